"""Producer-state dedup: examples, and a Hypothesis state machine against a list model."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from rift_broker.errors import InvalidProducerEpoch, OutOfOrderSequence
from rift_broker.producer_state import (
    APPEND,
    MAX_BATCHES,
    Duplicate,
    ProducerStateTable,
    last_sequence,
)


def _append(table: ProducerStateTable, pid: int, epoch: int, seq: int, n: int, offset: int) -> None:
    assert (
        table.check(producer_id=pid, epoch=epoch, base_sequence=seq, last_offset_delta=n - 1)
        == APPEND
    )
    table.record(
        producer_id=pid,
        epoch=epoch,
        base_sequence=seq,
        last_offset_delta=n - 1,
        base_offset=offset,
        last_offset=offset + n - 1,
    )


def test_non_idempotent_batches_are_always_appended() -> None:
    table = ProducerStateTable()
    for _ in range(3):
        assert (
            table.check(producer_id=-1, epoch=-1, base_sequence=-1, last_offset_delta=9) == APPEND
        )
        table.record(
            producer_id=-1,
            epoch=-1,
            base_sequence=-1,
            last_offset_delta=9,
            base_offset=0,
            last_offset=9,
        )
    assert len(table) == 0


def test_retry_gets_original_offsets() -> None:
    table = ProducerStateTable()
    _append(table, 7, 0, 0, 10, 100)
    _append(table, 7, 0, 10, 5, 110)
    verdict = table.check(producer_id=7, epoch=0, base_sequence=0, last_offset_delta=9)
    assert verdict == Duplicate(base_offset=100, last_offset=109)


def test_gap_is_out_of_order() -> None:
    table = ProducerStateTable()
    _append(table, 7, 0, 0, 10, 0)
    with pytest.raises(OutOfOrderSequence):
        table.check(producer_id=7, epoch=0, base_sequence=11, last_offset_delta=0)


def test_stale_epoch_is_fenced() -> None:
    table = ProducerStateTable()
    _append(table, 7, 3, 0, 1, 0)
    with pytest.raises(InvalidProducerEpoch):
        table.check(producer_id=7, epoch=2, base_sequence=1, last_offset_delta=0)


def test_new_epoch_must_start_at_zero() -> None:
    table = ProducerStateTable()
    _append(table, 7, 0, 0, 3, 0)
    with pytest.raises(OutOfOrderSequence):
        table.check(producer_id=7, epoch=1, base_sequence=3, last_offset_delta=0)
    _append(table, 7, 1, 0, 1, 3)
    assert table.epoch(7) == 1


def test_unknown_producer_accepts_any_sequence() -> None:
    table = ProducerStateTable()
    _append(table, 9, 0, 42, 2, 0)
    _append(table, 9, 0, 44, 1, 2)


def test_only_five_batches_are_remembered() -> None:
    table = ProducerStateTable()
    for i in range(MAX_BATCHES + 1):
        _append(table, 1, 0, i, 1, i)
    assert len(table.batches(1)) == MAX_BATCHES
    with pytest.raises(OutOfOrderSequence):  # the oldest one fell out of the window
        table.check(producer_id=1, epoch=0, base_sequence=0, last_offset_delta=0)


def test_sequence_wraps_at_int32_max() -> None:
    top = 2**31 - 1
    assert last_sequence(top - 1, 3) == 1
    table = ProducerStateTable()
    _append(table, 1, 0, top - 1, 2, 0)
    _append(table, 1, 0, 0, 1, 2)


def test_bump_epoch_and_truncate() -> None:
    table = ProducerStateTable()
    _append(table, 1, 0, 0, 1, 0)
    table.bump_epoch(producer_id=1, epoch=1)
    with pytest.raises(InvalidProducerEpoch):
        table.check(producer_id=1, epoch=0, base_sequence=1, last_offset_delta=0)
    _append(table, 1, 1, 0, 1, 5)
    _append(table, 1, 1, 1, 1, 6)
    table.truncate_to(6)
    assert [b.base_offset for b in table.batches(1)] == [5]
    table.truncate_to(0)
    assert table.epoch(1) is None


# -- model-based test ------------------------------------------------------------


class ProducerStateMachine(RuleBasedStateMachine):
    """Producers send, retry, skip and get fenced; the table must agree with a list model.

    The model is the log itself: a list of every appended (pid, epoch, first, last,
    base offset). Its verdicts are computed from that list directly.
    """

    @initialize()
    def setup(self) -> None:
        self.table = ProducerStateTable()
        self.log: list[
            tuple[int, int, int, int, int, int]
        ] = []  # pid, epoch, first, last, base, last_off
        self.next_offset = 0
        self.producers: dict[int, tuple[int, int]] = {}  # pid -> (epoch, next sequence)
        self.sent: list[tuple[int, int, int, int]] = []  # pid, epoch, base seq, delta

    def _model_verdict(self, pid: int, epoch: int, seq: int, delta: int) -> object:
        mine = [b for b in self.log if b[0] == pid]
        if not mine:
            return "append"
        current = mine[-1][1]
        if epoch < current:
            return InvalidProducerEpoch
        last = last_sequence(seq, delta)
        same = [b for b in mine if b[1] == current][-MAX_BATCHES:]
        if epoch == current:
            for b in same:
                if b[2] == seq and b[3] == last:
                    return Duplicate(base_offset=b[4], last_offset=b[5])
            return "append" if seq == same[-1][3] + 1 else OutOfOrderSequence
        return "append" if seq == 0 else OutOfOrderSequence

    def _send(self, pid: int, epoch: int, seq: int, delta: int) -> None:
        expected = self._model_verdict(pid, epoch, seq, delta)
        try:
            got: object = self.table.check(
                producer_id=pid, epoch=epoch, base_sequence=seq, last_offset_delta=delta
            )
        except (InvalidProducerEpoch, OutOfOrderSequence) as e:
            got = type(e)
        if got == APPEND:
            got = "append"
        assert got == expected
        if got == "append":
            base = self.next_offset
            self.next_offset += delta + 1
            self.table.record(
                producer_id=pid,
                epoch=epoch,
                base_sequence=seq,
                last_offset_delta=delta,
                base_offset=base,
                last_offset=base + delta,
            )
            self.log.append((pid, epoch, seq, last_sequence(seq, delta), base, base + delta))
        self.sent.append((pid, epoch, seq, delta))

    @rule(pid=st.integers(0, 3), delta=st.integers(0, 4))
    def send_next(self, pid: int, delta: int) -> None:
        epoch, seq = self.producers.get(pid, (0, 0))
        self._send(pid, epoch, seq, delta)
        self.producers[pid] = (epoch, seq + delta + 1)

    @precondition(lambda self: bool(self.sent))
    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        pid, epoch, seq, delta = data.draw(st.sampled_from(self.sent))
        self._send(pid, epoch, seq, delta)

    @rule(pid=st.integers(0, 3), skip=st.integers(1, 3))
    def gap(self, pid: int, skip: int) -> None:
        epoch, seq = self.producers.get(pid, (0, 0))
        self._send(pid, epoch, seq + skip, 0)

    @rule(pid=st.integers(0, 3))
    def new_epoch(self, pid: int) -> None:
        epoch, _ = self.producers.get(pid, (0, 0))
        self.producers[pid] = (epoch + 1, 0)

    @rule()
    def restart(self) -> None:
        """Rebuild from the log (what the broker does from batch headers at startup)."""
        self.table = ProducerStateTable()
        for pid, epoch, first, last, base, last_off in self.log:
            delta = last_off - base
            assert last_sequence(first, delta) == last
            self.table.record(
                producer_id=pid,
                epoch=epoch,
                base_sequence=first,
                last_offset_delta=delta,
                base_offset=base,
                last_offset=last_off,
            )

    @invariant()
    def no_sequence_appended_twice(self) -> None:
        if not hasattr(self, "log"):
            return
        seen = set()
        for pid, epoch, first, last, _, _ in self.log:
            for s in range(first, last + 1):
                assert (pid, epoch, s) not in seen
                seen.add((pid, epoch, s))


TestProducerStateMachine = ProducerStateMachine.TestCase
TestProducerStateMachine.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None
)
