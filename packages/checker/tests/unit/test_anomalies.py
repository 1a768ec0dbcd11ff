"""For every check: a small history with exactly that anomaly, and a near miss without it."""

from __future__ import annotations

import pytest

import rift_checker._analyzer as analyzer
from rift_checker import CheckConfig
from rift_checker.testing import HistoryBuilder


@pytest.fixture(autouse=True, params=["native", "python"])
def _pass(request, monkeypatch):
    """Every history here is checked by the native core and by the Python pass."""
    if request.param == "python":
        monkeypatch.setattr(analyzer, "NATIVE", False)


def _only(b: HistoryBuilder, *names: str, config: CheckConfig | None = None):
    result = b.check(config=config)
    assert result.anomalies == dict.fromkeys(names, 1), [c.explanation for c in result.cases()]
    assert result.valid is False
    return result


def _valid(b: HistoryBuilder):
    result = b.check()
    assert result.anomalies == {}, [c.explanation for c in result.cases()]
    assert result.valid is True
    return result


def test_lost_write():
    b = HistoryBuilder()
    a = b.send(process=0, value="a", offset=0)
    b.send(process=0, value="b", offset=1)
    final = b.final_read(records={"t/0": [(1, "b")]})
    (case,) = _only(b, "lost-write").cases("lost-write")
    assert case.ops == (a, final)
    assert "'a'" in case.explanation
    assert "offset 0" in case.explanation


def test_no_lost_write_when_every_ack_is_read():
    b = HistoryBuilder()
    b.send(process=0, value="a", offset=0)
    b.send(process=0, value="b", offset=1)
    b.final_read(records={"t/0": [(0, "a"), (1, "b")]})
    _valid(b)


def test_unseen():
    b = HistoryBuilder()
    b.send(process=0, value="a", offset=0)
    w = b.send(process=0, value="b", offset=1)
    b.final_read(records={"t/0": [(0, "a")]})
    (case,) = _only(b, "unseen").cases("unseen")
    assert case.ops == (w,)


def test_acked_sends_below_a_final_log_start_were_deleted_not_lost():
    b = HistoryBuilder()
    b.send(process=0, value="a", offset=0)
    b.send(process=0, value="b", offset=1)
    c = b.send(process=0, value="c", offset=2)
    b.send(process=0, value="d", offset=3)
    b.final_read(records={"t/0": [(3, "d")]}, log_start={"t/0": 2})
    (case,) = _only(b, "lost-write").cases("lost-write")  # 2 is at the log start
    assert case.ops[0] == c
    b = HistoryBuilder()
    b.send(process=0, value="a", offset=0)
    b.send(process=0, value="b", offset=1)
    b.final_read(records={"t/0": [(1, "b")]}, log_start={"t/0": 1})
    _valid(b)


def test_unread_tail_without_final_read_is_unknown():
    b = HistoryBuilder()
    b.send(process=0, value="a", offset=0)
    b.send(process=0, value="b", offset=1)
    b.poll(process=1, records={"t/0": [(0, "a")]})
    result = b.check()
    assert result.valid == "unknown"
    assert result.check("unseen").status == "unknown"
    assert result.check("unseen").unknown == 1
    assert result.unknown_reasons


def test_duplicate():
    b = HistoryBuilder()
    a = b.send(process=0, value="a", offset=0)
    final = b.final_read(records={"t/0": [(0, "a"), (1, "a")]})
    (case,) = _only(b, "duplicate").cases("duplicate")
    assert case.ops == (a, final)


def test_duplicate_tolerated():
    b = HistoryBuilder()
    b.send(process=0, value="a", offset=0)
    b.final_read(records={"t/0": [(0, "a"), (1, "a")]})
    result = b.check(config=CheckConfig(tolerate=frozenset({"duplicate"})))
    assert result.valid is True
    assert result.check("duplicate").status == "tolerated"
    assert result.anomalies == {"duplicate": 1}


def test_inconsistent_offsets():
    b = HistoryBuilder()
    a = b.send(process=0, value="a", offset=0)
    b.send(process=1, value="b", type="info")
    poll = b.poll(process=2, records={"t/0": [(0, "b")]})
    b.final_read(records={"t/0": [(0, "a")]})
    (case,) = _only(b, "inconsistent-offsets").cases("inconsistent-offsets")
    assert case.ops == (a, poll)


def test_info_send_read_where_acked_nothing_is_fine():
    b = HistoryBuilder()
    b.send(process=1, value="b", type="info")
    b.poll(process=2, records={"t/0": [(0, "b")]})
    b.final_read(records={"t/0": [(0, "b")]})
    _valid(b)


def test_nonmonotonic_send_is_also_a_cycle():
    # A process's later send landing before its earlier one contradicts process
    # order, which is real-time order: both checks must say so.
    b = HistoryBuilder()
    a = b.send(process=0, value="a", offset=1)
    c = b.send(process=0, value="c", offset=0)
    b.final_read(records={"t/0": [(0, "c"), (1, "a")]})
    result = _only(b, "nonmonotonic-send", "cycle")
    assert result.cases("nonmonotonic-send")[0].ops == (a, c)


def test_a_send_acked_at_the_offset_of_the_one_before_is_nonmonotonic():
    b = HistoryBuilder()
    a = b.send(process=0, value="a", offset=3)
    c = b.send(process=0, value="c", offset=3)
    b.final_read(records={"t/0": [(3, "a")]})
    result = b.check()
    assert result.cases("nonmonotonic-send")[0].ops == (a, c)
    assert result.valid is False


def test_a_value_read_before_its_ack_names_another_offset_is_a_duplicate():
    b = HistoryBuilder()
    w = b.invoke_send(process=0, value="a")
    poll = b.poll(process=1, records={"t/0": [(5, "a")]})
    b.complete_send(process=0, value="a", offset=6)
    b.final_read(records={"t/0": [(5, "a"), (6, "a")]})
    (case,) = b.check().cases("duplicate")
    assert case.ops == (poll, w)
    assert "offset 5" in case.explanation
    assert "offset 6" in case.explanation


def test_a_write_below_what_a_read_showed_before_it_began_is_a_cycle():
    # Only the poll showed offset 2 before "b" was invoked ("c"'s ack came later),
    # so the proof of the cycle must go through the poll.
    b = HistoryBuilder()
    b.send(process=0, value="a", offset=0)
    c = b.invoke_send(process=3, value="c")
    poll = b.poll(process=1, records={"t/0": [(0, "a"), (2, "c")]})
    w = b.send(process=2, value="b", offset=1)
    b.complete_send(process=3, value="c", offset=2)
    b.final_read(records={"t/0": [(0, "a"), (1, "b"), (2, "c")]})
    result = b.check()
    (cycle,) = result.cases("cycle")
    assert {c, poll, w} <= set(cycle.ops), cycle
    assert result.valid is False


def test_the_nemesis_goes_on_after_an_op_that_ended_info():
    # Only client processes are retired by an info; the nemesis is one actor. (Its
    # f here is one of the model's, so that the typed decoder takes its lines.)
    b = HistoryBuilder()
    for _ in range(2):
        b.invoke(process="nemesis", f="poll")
        b.complete(process="nemesis", type="info", error="timeout")
    b.send(process=0, value="a", offset=0)
    b.final_read(records={"t/0": [(0, "a")]})
    _valid(b)


def test_sends_of_one_process_to_two_partitions_are_independent():
    b = HistoryBuilder()
    b.send(process=0, value="a", partition=0, offset=5)
    b.send(process=0, value="b", partition=1, offset=0)
    b.final_read(records={"t/0": [(5, "a")], "t/1": [(0, "b")]})
    _valid(b)


def _three(b: HistoryBuilder) -> None:
    for o, v in enumerate("abc"):
        b.send(process=0, value=v, offset=o)


FINAL = {"t/0": [(0, "a"), (1, "b"), (2, "c")]}


def test_nonmonotonic_poll_within_one_poll():
    b = HistoryBuilder()
    _three(b)
    poll = b.poll(process=1, records={"t/0": [(1, "b"), (0, "a")]})
    b.final_read(records=FINAL)
    (case,) = _only(b, "nonmonotonic-poll").cases("nonmonotonic-poll")
    assert case.ops == (poll,)


def test_nonmonotonic_poll_across_polls():
    b = HistoryBuilder()
    _three(b)
    first = b.poll(process=1, records={"t/0": [(0, "a"), (1, "b")]})
    second = b.poll(process=1, records={"t/0": [(1, "b"), (2, "c")]})
    b.final_read(records=FINAL)
    (case,) = _only(b, "nonmonotonic-poll").cases("nonmonotonic-poll")
    assert case.ops == (first, second)


def test_assign_resets_poll_position():
    b = HistoryBuilder()
    _three(b)
    b.poll(process=1, records={"t/0": [(0, "a"), (1, "b")]})
    b.invoke(process=1, f="assign", value={"topic": "t", "partitions": [0]})
    b.complete(process=1)
    b.poll(process=1, records={"t/0": [(0, "a")]})
    b.invoke(process=1, f="subscribe", value={"topics": ["t"]})
    b.complete(process=1)
    b.poll(process=1, records={"t/0": [(2, "c")]})
    b.final_read(records=FINAL)
    _valid(b)


def test_group_assignment_resets_poll_position():
    b = HistoryBuilder()
    _three(b)
    b.poll(process=1, records={"t/0": [(0, "a"), (1, "b")]}, assigned={"t/0": 0})
    # A rebalance hands t/0 back from the committed offset 1: reading b again is fine.
    b.poll(process=1, records={"t/0": [(1, "b"), (2, "c")]}, assigned={"t/0": 1})
    b.final_read(records=FINAL)
    _valid(b)


def test_lost_commit():
    b = HistoryBuilder()
    _three(b)
    b.poll(process=1, records={"t/0": [(0, "a"), (1, "b")]}, assigned={"t/0": 0})
    commit = b.commit(process=1, offsets={"t/0": 2})
    resumed = b.poll(process=2, records={"t/0": [(1, "b"), (2, "c")]}, assigned={"t/0": 1})
    b.final_read(records=FINAL)
    (case,) = _only(b, "lost-commit").cases("lost-commit")
    assert case.ops == (commit, resumed)
    assert "offset 1" in case.explanation
    assert "offset 2" in case.explanation


def test_no_lost_commit_when_the_commit_failed_or_was_not_yet_acknowledged():
    b = HistoryBuilder()
    _three(b)
    b.poll(process=1, records={"t/0": [(0, "a"), (1, "b")]}, assigned={"t/0": 0})
    b.commit(process=1, offsets={"t/0": 2}, type="fail")
    # Process 3's commit is acknowledged only after process 2's poll began.
    b.invoke(process=3, f="commit")
    b.invoke(process=2, f="poll")
    b.complete(process=3, value={"offsets": {"t/0": 2}})
    b.complete(process=2, value={"records": {"t/0": [[1, "b"], [2, "c"]]}, "assigned": {"t/0": 1}})
    b.poll(process=4, records={"t/0": [(2, "c")]}, assigned={"t/0": 2})
    b.final_read(records=FINAL)
    _valid(b)


def test_poll_skip_within_one_poll():
    b = HistoryBuilder()
    _three(b)
    poll = b.poll(process=1, records={"t/0": [(0, "a"), (2, "c")]})
    b.final_read(records=FINAL)
    (case,) = _only(b, "poll-skip").cases("poll-skip")
    assert case.ops == (poll, 2)  # op 2 is the send acked at offset 1
    assert "offset 1" in case.explanation


def test_poll_skip_across_polls():
    b = HistoryBuilder()
    _three(b)
    first = b.poll(process=1, records={"t/0": [(0, "a")]})
    second = b.poll(process=1, records={"t/0": [(2, "c")]})
    b.final_read(records=FINAL)
    (case,) = _only(b, "poll-skip").cases("poll-skip")
    assert case.ops[:2] == (first, second)


def test_gap_over_an_offset_with_no_known_value_is_not_a_skip():
    b = HistoryBuilder()
    b.send(process=0, value="a", offset=0)
    b.send(process=0, value="c", offset=2)  # offset 1: a transaction marker, say
    b.poll(process=1, records={"t/0": [(0, "a"), (2, "c")]})
    b.final_read(records={"t/0": [(0, "a"), (2, "c")]})
    _valid(b)


def test_poll_skip_tolerated_under_subscribe():
    b = HistoryBuilder()
    _three(b)
    b.poll(process=1, records={"t/0": [(0, "a"), (2, "c")]})
    b.final_read(records=FINAL)
    result = b.check(config=CheckConfig(tolerate=frozenset({"poll-skip"})))
    assert result.valid is True


def test_failed_write_read():
    b = HistoryBuilder()
    w = b.send(process=0, value="a", type="fail")
    poll = b.poll(process=1, records={"t/0": [(0, "a")]})
    b.final_read(records={"t/0": [(0, "a")]})
    (case,) = _only(b, "failed-write-read").cases("failed-write-read")
    assert case.ops == (w, poll)


def test_failed_write_not_read_is_fine():
    b = HistoryBuilder()
    b.send(process=0, value="a", type="fail")
    b.send(process=0, value="b", offset=0)
    b.final_read(records={"t/0": [(0, "b")]})
    _valid(b)


def test_multiple_leaders():
    b = HistoryBuilder()
    first = b.leader(node="n1", epoch=1)
    b.leader(node="n1", epoch=1)  # the same leader reported twice is fine
    second = b.leader(node="n2", epoch=1)
    (case,) = _only(b, "multiple-leaders").cases("multiple-leaders")
    assert case.ops == (first, second)


def test_new_leader_in_new_epoch_is_fine():
    b = HistoryBuilder()
    b.leader(node="n1", epoch=1)
    b.leader(node="n2", epoch=2)
    b.leader(node="n2", epoch=1, partition=1)
    _valid(b)


def test_hw_regression():
    b = HistoryBuilder()
    high = b.high_watermark(offset=5)
    low = b.high_watermark(offset=3)
    (case,) = _only(b, "hw-regression").cases("hw-regression")
    assert case.ops == (high, low)


def test_hw_rising_and_per_partition_is_fine():
    b = HistoryBuilder()
    b.high_watermark(offset=3)
    b.high_watermark(offset=3)
    b.high_watermark(offset=5)
    b.high_watermark(offset=1, partition=1)
    _valid(b)


def test_cycle_log_order_against_real_time():
    # T1 wrote x at offset 1 and completed; only then was T2 invoked, and the log
    # put T2's y at offset 0, before x.
    b = HistoryBuilder()
    t1 = b.send(process=0, value="x", offset=1)
    t2 = b.send(process=1, value="y", offset=0)
    b.final_read(records={"t/0": [(0, "y"), (1, "x")]})
    (case,) = _only(b, "cycle").cases("cycle")
    assert set(case.ops) == {t1, t2}
    assert len(case.steps) == 2
    assert "write-write" in case.steps[0]
    assert "real time" in case.steps[1]
    assert all(" precedes " in s and " because " in s for s in case.steps)


def test_cycle_read_from_the_future():
    b = HistoryBuilder()
    poll = b.poll(process=1, records={"t/0": [(0, "y")]})
    w = b.send(process=0, value="y", offset=0)
    b.final_read(records={"t/0": [(0, "y")]})
    (case,) = _only(b, "cycle").cases("cycle")
    assert case.ops == (w, poll)
    assert "write-read" in case.steps[0]
    assert "real time" in case.steps[1]


def test_cycle_through_a_read_of_a_later_offset():
    b = HistoryBuilder()
    later = b.send(process=2, value="z", offset=1)
    poll = b.poll(process=1, records={"t/0": [(1, "z")]})
    w = b.send(process=0, value="y", offset=0)
    b.final_read(records={"t/0": [(0, "y"), (1, "z")]})
    (case,) = _only(b, "cycle").cases("cycle")
    assert w in case.ops
    assert later in case.ops or poll in case.ops


def test_concurrent_sends_acked_in_any_order_are_fine():
    b = HistoryBuilder()
    b.invoke_send(process=0, value="x")
    b.invoke_send(process=1, value="y")
    b.complete_send(process=1, value="y", offset=1)
    b.complete_send(process=0, value="x", offset=0)
    b.poll(process=2, records={"t/0": [(0, "x"), (1, "y")]})
    b.final_read(records={"t/0": [(0, "x"), (1, "y")]})
    _valid(b)


def test_checks_filter_skips_the_rest():
    b = HistoryBuilder()
    b.send(process=0, value="a", offset=0)
    b.final_read(records={"t/0": [(0, "a"), (1, "a")]})
    result = b.check(config=CheckConfig(checks=frozenset({"lost-write"})))
    assert result.valid is True
    assert result.check("duplicate").status == "skipped"
    assert result.anomalies == {}


def test_nemesis_ops_are_not_checked():
    b = HistoryBuilder()
    b.invoke(process="nemesis", f="start-partition", value={"grudge": {"n1": ["n2"]}})
    b.complete(process="nemesis", type="info", value=None)
    b.send(process=0, value="a", offset=0)
    b.final_read(records={"t/0": [(0, "a")]})
    result = _valid(b)
    assert result.statistics["by_f"]["start-partition"]["info"] == 1


def test_many_cycles_are_all_counted_but_only_max_cases_explained():
    b = HistoryBuilder()
    final = []
    for k in range(5):
        b.send(process=2 * k, value=f"x{k}", offset=2 * k + 1)
        b.send(process=2 * k + 1, value=f"y{k}", offset=2 * k)
        final += [(2 * k, f"y{k}"), (2 * k + 1, f"x{k}")]
    b.final_read(records={"t/0": final})
    check = b.check(config=CheckConfig(max_cases=2)).check("cycle")
    assert check.count == 5
    assert len(check.cases) == 2


def test_hw_regression_is_judged_by_leader_epoch_when_given() -> None:
    import io

    from rift_checker import HistoryWriter, check_history

    def verdict(observations: list[dict]) -> int:
        out = io.StringIO()
        with HistoryWriter(out) as w:
            for i, value in enumerate(observations):
                w.observe(f="high-watermark", value={"topic": "t", "partition": 0, **value}, time=i)
        return check_history(io.StringIO(out.getvalue())).check("hw-regression").count

    # a deposed leader (epoch 0) reporting after its successor (epoch 1): stale, not a regression
    assert verdict([{"offset": 28, "epoch": 1}, {"offset": 19, "epoch": 0}]) == 0
    # the same or a newer epoch going back is a regression
    assert verdict([{"offset": 28, "epoch": 1}, {"offset": 19, "epoch": 1}]) == 1
    assert verdict([{"offset": 28, "epoch": 1}, {"offset": 19, "epoch": 2}]) == 1
    # without epochs every decrease counts, as before
    assert verdict([{"offset": 28}, {"offset": 19}]) == 1


def test_nonmonotonic_poll_back_to_its_first_offset():
    b = HistoryBuilder()
    _three(b)
    poll = b.poll(process=1, records={"t/0": [(0, "a"), (1, "b"), (0, "a")]})
    b.final_read(records=FINAL)
    (case,) = _only(b, "nonmonotonic-poll").cases("nonmonotonic-poll")
    assert case.ops == (poll,)
    assert "same poll" in case.explanation


def test_nonmonotonic_poll_after_continuing_from_the_previous_poll():
    # The second poll starts where the first stopped, then steps back within itself.
    b = HistoryBuilder()
    _three(b)
    b.poll(process=1, records={"t/0": [(0, "a"), (1, "b")]})
    second = b.poll(process=1, records={"t/0": [(2, "c"), (1, "b")]})
    b.final_read(records=FINAL)
    (case,) = _only(b, "nonmonotonic-poll").cases("nonmonotonic-poll")
    assert case.ops == (second,)
    assert "offset 1 after offset 2 in the same poll" in case.explanation


def test_cycle_through_a_send_that_ended_info_but_was_read():
    # x was never acknowledged, yet the final read shows it at offset 0, before z;
    # a poll had read z at offset 1 before x was even invoked.
    import networkx as nx

    from rift_checker import history_graph

    b = HistoryBuilder()
    z = b.send(process=2, value="z", offset=1)
    poll = b.poll(process=1, records={"t/0": [(1, "z")]})
    x = b.send(process=0, value="x", type="info")
    b.final_read(records={"t/0": [(0, "x"), (1, "z")]})
    (case,) = _only(b, "cycle").cases("cycle")
    assert x in case.ops
    assert poll in case.ops or z in case.ops
    assert not nx.is_directed_acyclic_graph(history_graph(b.lines()))
