"""The accumulator with an injected clock: linger, size, order, sequences."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from rift_client.accumulator import Accumulator
from rift_client.records import Record, estimate_size
from rift_client.types import TopicPartition

T0 = TopicPartition(topic="t", partition=0)
T1 = TopicPartition(topic="t", partition=1)


def rec(value: bytes = b"v") -> Record:
    return Record(value=value, timestamp_ms=0)


def test_batch_waits_for_linger() -> None:
    acc = Accumulator(linger=0.010, max_batch_bytes=1000)
    acc.append(T0, rec(), "a", now=100.0)
    assert acc.ready(now=100.005) == []
    assert acc.next_wakeup(now=100.005) == pytest.approx(100.010)
    (batch,) = acc.ready(now=100.010)
    assert batch.tokens == ["a"]


def test_full_batch_is_ready_at_once_and_a_new_one_opens() -> None:
    size = estimate_size(rec(b"x" * 50))
    acc = Accumulator(linger=10.0, max_batch_bytes=size * 2)
    opened = [acc.append(T0, rec(b"x" * 50), i, now=0.0) for i in range(3)]
    assert opened == [True, False, True]
    (batch,) = acc.ready(now=0.0)
    assert batch.tokens == [0, 1]


def test_needs_new_batch() -> None:
    acc = Accumulator(linger=1.0, max_batch_bytes=10_000)
    assert acc.needs_new_batch(T0, rec())
    acc.append(T0, rec(), 0, now=0.0)
    assert not acc.needs_new_batch(T0, rec())
    assert acc.needs_new_batch(T0, rec(b"x" * 20_000))


def test_one_batch_in_flight_per_partition_and_retry_goes_first() -> None:
    acc = Accumulator(linger=0.0, max_batch_bytes=estimate_size(rec()))
    for token in "abc":
        acc.append(T0, rec(), token, now=0.0)
    acc.append(T1, rec(), "z", now=0.0)
    first = acc.ready(now=0.0)
    assert sorted(b.tokens[0] for b in first) == ["a", "z"]
    assert acc.ready(now=1.0) == []  # both partitions are in flight
    a = next(b for b in first if b.tp == T0)
    acc.retry(a, retry_at=5.0)
    assert acc.ready(now=1.0) == []  # backing off; "b" must not overtake "a"
    assert acc.next_wakeup(now=1.0) == 5.0
    (again,) = acc.ready(now=5.0)
    assert again is a
    acc.complete(a)
    (b,) = acc.ready(now=5.0)
    assert b.tokens == ["b"]


def test_flush_ignores_linger() -> None:
    acc = Accumulator(linger=60.0, max_batch_bytes=1000)
    acc.append(T0, rec(), 0, now=0.0)
    acc.begin_flush()
    assert len(acc.ready(now=0.0)) == 1
    acc.end_flush()


def test_sequences_assigned_once_and_kept_across_retries() -> None:
    acc = Accumulator(linger=0.0, max_batch_bytes=10_000, idempotent=True)
    for i in range(3):
        acc.append(T0, rec(), i, now=0.0)
    (b1,) = acc.ready(now=0.0)
    assert b1.base_sequence == 0
    acc.retry(b1, retry_at=0.0)
    (b1_again,) = acc.ready(now=0.0)
    assert b1_again.base_sequence == 0
    acc.complete(b1)
    acc.append(T0, rec(), 3, now=1.0)
    (b2,) = acc.ready(now=1.0)
    assert b2.base_sequence == 3


def test_failed_idempotent_batch_forces_a_reset() -> None:
    acc = Accumulator(linger=0.0, max_batch_bytes=estimate_size(rec()), idempotent=True)
    acc.append(T0, rec(), 0, now=0.0)
    acc.append(T0, rec(), 1, now=0.0)
    (b1,) = acc.ready(now=0.0)
    acc.fail(b1)
    assert acc.needs_reset
    assert acc.ready(now=1.0) == []  # hold everything until a new producer id
    acc.reset()
    (b2,) = acc.ready(now=1.0)
    assert b2.tokens == [1]
    assert b2.base_sequence == 0


def test_expired_batches_are_removed_unless_in_flight() -> None:
    acc = Accumulator(linger=100.0, max_batch_bytes=10_000)
    acc.append(T1, rec(), 1, now=0.0)
    acc.begin_flush()
    (b1,) = acc.ready(now=0.0)
    acc.end_flush()
    acc.append(T0, rec(), 0, now=0.0)
    expired = acc.expired(deadline=30.0, now=30.0)
    assert [b.tokens for b in expired] == [[0]]
    assert acc.pending == 1  # T1's batch is in flight: the driver decides it
    acc.complete(b1)
    assert acc.pending == 0


def test_resolving_a_batch_that_is_not_in_flight_is_an_error() -> None:
    acc = Accumulator(linger=0.0, max_batch_bytes=estimate_size(rec()))
    acc.append(T0, rec(), 0, now=0.0)
    acc.append(T0, rec(), 1, now=0.0)
    (b1,) = acc.ready(now=0.0)
    acc.complete(b1)
    with pytest.raises(ValueError, match="head"):
        acc.complete(b1)


class AccumulatorMachine(RuleBasedStateMachine):
    """Against a model: per partition, tokens resolve in append order, once each."""

    def __init__(self) -> None:
        super().__init__()
        self.acc = Accumulator(
            linger=0.5, max_batch_bytes=3 * estimate_size(rec()), idempotent=True
        )
        self.now = 0.0
        self.appended: dict[TopicPartition, list[int]] = {T0: [], T1: []}
        self.resolved: dict[TopicPartition, list[int]] = {T0: [], T1: []}
        self.flying: list = []
        self.next_token = 0
        self.sequences: dict[TopicPartition, int] = {T0: 0, T1: 0}

    @rule(tp=st.sampled_from([T0, T1]))
    def append(self, tp: TopicPartition) -> None:
        self.acc.append(tp, rec(), self.next_token, now=self.now)
        self.appended[tp].append(self.next_token)
        self.next_token += 1

    @rule(dt=st.floats(min_value=0, max_value=1))
    def tick(self, dt: float) -> None:
        self.now += dt

    @rule()
    def drain(self) -> None:
        for batch in self.acc.ready(now=self.now):
            assert batch.tp not in {b.tp for b in self.flying}
            if batch.attempts == 0:
                assert batch.base_sequence == self.sequences[batch.tp]
                self.sequences[batch.tp] += len(batch.records)
            batch.attempts += 1
            self.flying.append(batch)

    @precondition(lambda self: self.flying)
    @rule(index=st.integers(min_value=0), ok=st.booleans())
    def resolve(self, index: int, ok: bool) -> None:
        batch = self.flying.pop(index % len(self.flying))
        if ok:
            self.acc.complete(batch)
            self.resolved[batch.tp].extend(batch.tokens)  # type: ignore[arg-type]
        else:
            self.acc.retry(batch, retry_at=self.now + 0.25)

    @invariant()
    def order_is_kept(self) -> None:
        for tp in (T0, T1):
            done = self.resolved[tp]
            assert done == self.appended[tp][: len(done)]

    @invariant()
    def pending_matches(self) -> None:
        unresolved = sum(len(self.appended[t]) - len(self.resolved[t]) for t in (T0, T1))
        records = sum(len(b.records) for b in self.acc.batches())
        assert records == unresolved


TestAccumulatorMachine = AccumulatorMachine.TestCase
TestAccumulatorMachine.settings = settings(deadline=None, max_examples=100)
