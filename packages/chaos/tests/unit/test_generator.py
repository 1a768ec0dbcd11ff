from __future__ import annotations

import json
import re

import pytest

from rift_chaos.errors import InvalidWorkload
from rift_chaos.generator import (
    NEMESIS_KINDS,
    NS,
    ClientSpec,
    NemesisSpec,
    client_ops,
    nemesis_ops,
    schedule,
)
from rift_chaos.op import NEMESIS, OpType

NODES = ["n1", "n2", "n3", "n4", "n5"]
CLIENT = ClientSpec(concurrency=4, rate=100.0, mix={"send": 3, "poll": 1})
MIXED = NemesisSpec(kinds=NEMESIS_KINDS, interval=2.0, schedule="random", targets="minority")


def run(seed: int, nemesis: NemesisSpec = MIXED, client: ClientSpec = CLIENT):
    return schedule(
        nodes=NODES, client=client, nemesis=nemesis, time_limit=30.0, seed=seed, partitions=3
    )


def dump(ops) -> str:
    return json.dumps([op.to_dict() for op in ops], sort_keys=True)


def test_same_seed_same_schedule() -> None:
    assert dump(run(42)) == dump(run(42))


def test_other_seed_other_schedule() -> None:
    assert dump(run(42)) != dump(run(43))


def test_schedule_is_pinned() -> None:
    # Pinned: a change here changes the replay of every stored run; make it on purpose.
    assert [(op.f, op.process, op.value, op.time) for op in run(7)[:4]] == [
        ("send", 0, {"topic": "rift", "partition": 2, "value": 1}, 11475332),
        ("poll", 1, None, 20384108),
        ("send", 2, {"topic": "rift", "partition": 0, "value": 2}, 27583155),
        ("send", 3, {"topic": "rift", "partition": 2, "value": 3}, 34866712),
    ]
    first_fault = next(op for op in run(7) if op.process == NEMESIS)
    assert (first_fault.f, first_fault.time) == ("start-partition", 2149101069)
    assert first_fault.value["kind"] == "partition-bridge"


def test_times_are_ordered_and_within_the_limit() -> None:
    ops = run(1)
    times = [op.time for op in ops]
    assert times == sorted(times)
    assert all(0 < t <= 30 * NS for t in times)
    assert all(op.type is OpType.INVOKE for op in ops)


def test_rate_and_mix_are_respected() -> None:
    ops = [op for op in run(3) if op.process != NEMESIS]
    assert 2_700 < len(ops) < 3_300  # 100/s for 30 s
    sends = sum(op.f == "send" for op in ops)
    assert 0.7 < sends / len(ops) < 0.8
    assert {op.process for op in ops} == {0, 1, 2, 3}


def test_send_values_are_unique_and_increasing() -> None:
    sends = [op.value for op in run(5) if op.f == "send"]
    assert [v["value"] for v in sends] == list(range(1, len(sends) + 1))
    assert {v["topic"] for v in sends} == {"rift"}
    assert {v["partition"] for v in sends} == {0, 1, 2}
    assert all(op.value is None for op in run(5) if op.f == "poll")


def test_assign_and_subscribe_values() -> None:
    client = ClientSpec(mix={"assign": 1, "subscribe": 1})
    ops = list(client_ops(client, time_limit=5.0, seed=1, topic="t", partitions=4))
    assigns = [op.value["partitions"] for op in ops if op.f == "assign"]
    assert assigns
    assert all(a and set(a) <= {"t/0", "t/1", "t/2", "t/3"} for a in assigns)
    assert all(op.value == {"topics": ["t"]} for op in ops if op.f == "subscribe")


def test_nemesis_pairs_alternate_and_heal_by_the_limit() -> None:
    ops = [op for op in run(9) if op.process == NEMESIS]
    starts, stops = ops[0::2], ops[1::2]
    assert len(starts) == len(stops) > 3
    pairs = {
        "start-partition": "stop-partition",
        "kill": "restart",
        "pause": "resume",
        "clock-offset": "clock-reset",
    }
    for start, stop in zip(starts, stops, strict=True):
        assert pairs[start.f] == stop.f
        assert start.time < stop.time <= 30 * NS


def test_alternate_schedule_has_fixed_intervals() -> None:
    spec = NemesisSpec(kinds=("kill",), interval=5.0)
    ops = list(nemesis_ops(spec, nodes=NODES, time_limit=22.0, seed=0))
    assert [op.time / NS for op in ops] == [5.0, 10.0, 15.0, 20.0]
    assert ops[0].value == ops[1].value
    assert len(ops[0].value["nodes"]) == 1


def test_partition_values_carry_a_grudge_or_a_leader_target() -> None:
    for kind in ("partition-random-halves", "partition-majorities-ring", "partition-bridge"):
        spec = NemesisSpec(kinds=(kind,), interval=1.0)
        op = next(nemesis_ops(spec, nodes=NODES, time_limit=5.0, seed=2))
        assert set(op.value["grudge"]) == set(NODES)
        assert op.value["kind"] == kind
    spec = NemesisSpec(kinds=("partition-leader",), interval=1.0)
    assert next(nemesis_ops(spec, nodes=NODES, time_limit=5.0, seed=2)).value == {
        "kind": "partition-leader",
        "target": "leader",
    }


def test_clock_offsets_are_bounded() -> None:
    spec = NemesisSpec(kinds=("clock",), interval=1.0, targets="all", max_clock_offset=10)
    for op in nemesis_ops(spec, nodes=NODES, time_limit=20.0, seed=4):
        if op.f == "clock-offset":
            assert set(op.value["offsets"]) == set(NODES)
            assert all(-10 <= v <= 10 for v in op.value["offsets"].values())


def test_no_faults_when_schedule_is_none_or_no_kinds() -> None:
    for spec in (NemesisSpec(), NemesisSpec(kinds=("kill",), schedule="none")):
        assert list(nemesis_ops(spec, nodes=NODES, time_limit=60.0, seed=1)) == []


def test_client_stream_does_not_depend_on_the_nemesis_plan() -> None:
    clients = [op for op in run(11) if op.process != NEMESIS]
    alone = list(client_ops(CLIENT, time_limit=30.0, seed=11, partitions=3))
    assert dump(clients) == dump(alone)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"concurrency": 0}, "client.concurrency"),
        ({"rate": -1}, "client.rate"),
        ({"mix": {"explode": 1}}, "client.mix.explode"),
        ({"mix": {}}, "client.mix"),
    ],
)
def test_client_spec_rejects_bad_values(kwargs, field) -> None:
    with pytest.raises(InvalidWorkload, match=re.escape(field)):
        ClientSpec(**kwargs)


def test_nemesis_spec_rejects_bad_values() -> None:
    with pytest.raises(InvalidWorkload, match=r"nemesis\.kinds"):
        NemesisSpec(kinds=("meteor",))
    with pytest.raises(InvalidWorkload, match=r"nemesis\.schedule"):
        NemesisSpec(schedule="sometimes")
    with pytest.raises(InvalidWorkload, match=r"nemesis\.interval"):
        NemesisSpec(interval=0)
