"""The partition log against a list model, under appends, reads, rolls, retention,
truncation, clean reopen and crashes that lose unsynced bytes."""

from __future__ import annotations

import random
from dataclasses import dataclass

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from rift_broker.log import LogConfig, OffsetOutOfRangeError, PartitionLog
from rift_broker.records import build_batch as make_batch
from rift_broker.records import iter_batches, parse_header
from rift_broker.storage import MemoryStorage

DIR = "/data/topic-0"
CONFIG = LogConfig(
    segment_bytes=600,
    segment_ms=1000,
    index_interval_bytes=150,
    retention_bytes=1500,
    retention_ms=-1,
)


@dataclass
class Stored:
    base: int
    last: int
    epoch: int
    data: bytes


class LogMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.storage = MemoryStorage()
        self.now = 0
        self.log = PartitionLog.open(DIR, config=CONFIG, storage=self.storage, now_ms=self.now)
        self.batches: list[Stored] = []  # the model: every batch from log_start_offset on
        self.synced = 0  # how many of self.batches are durable
        self.start = 0
        self.epoch = 0

    @property
    def end(self) -> int:
        return self.batches[-1].last + 1 if self.batches else self.start

    def reopen(self) -> None:
        self.log = PartitionLog.open(DIR, config=CONFIG, storage=self.storage, now_ms=self.now)

    @rule(
        records=st.integers(1, 5),
        size=st.integers(0, 60),
        bump=st.booleans(),
        ts=st.integers(0, 10_000),
    )
    def append(self, records: int, size: int, bump: bool, ts: int) -> None:
        self.epoch += bump
        self.now += 1
        raw = make_batch([bytes([records]) * size] * records, base_timestamp=ts)
        info = self.log.append(raw, leader_epoch=self.epoch, now_ms=self.now)
        assert info.base_offset == self.end
        assert info.last_offset == self.end + records - 1
        stamped = bytearray(raw)
        stamped[0:8] = info.base_offset.to_bytes(8, "big", signed=True)
        stamped[12:16] = self.epoch.to_bytes(4, "big", signed=True)
        self.batches.append(Stored(info.base_offset, info.last_offset, self.epoch, bytes(stamped)))

    @rule(data=st.data(), max_bytes=st.integers(0, 800), hw=st.booleans())
    def read(self, data: st.DataObject, max_bytes: int, hw: bool) -> None:
        offset = data.draw(st.integers(self.start, self.end))
        max_offset = data.draw(st.integers(self.start, self.end + 1)) if hw else None
        got = self.log.read(offset, max_bytes=max_bytes, max_offset=max_offset)
        expected = b""
        limit = self.end if max_offset is None else max_offset
        for stored in self.batches:
            if stored.last < offset or stored.base >= limit:
                continue
            if expected and len(expected) + len(stored.data) > max_bytes:
                break
            expected += stored.data
        assert got == expected

    @rule(offset=st.integers(-5, -1))
    def read_out_of_range(self, offset: int) -> None:
        for bad in (self.start + offset, self.end - offset):
            try:
                self.log.read(bad, max_bytes=100)
            except OffsetOutOfRangeError:
                pass
            else:
                raise AssertionError(f"read({bad}) outside [{self.start}, {self.end}]")

    @rule()
    def flush(self) -> None:
        self.log.flush()
        self.synced = len(self.batches)
        assert self.log.flushed_offset == self.end

    @rule()
    def roll_by_age(self) -> None:
        self.now += CONFIG.segment_ms
        self.log.maybe_roll(self.now)

    @rule()
    def retention(self) -> None:
        deleted = self.log.apply_retention(self.now)
        new_start = self.log.log_start_offset
        assert (deleted > 0) == (new_start > self.start)
        dropped = [b for b in self.batches if b.last < new_start]
        assert all(b.base != new_start for b in dropped)
        assert new_start == self.end or any(b.base == new_start for b in self.batches)
        self.batches = self.batches[len(dropped) :]
        self.synced = max(0, self.synced - len(dropped))
        self.start = new_start
        # What is left still holds at least retention_bytes, or only the active segment.
        left = sum(len(b.data) for b in self.batches)
        assert (
            left >= CONFIG.retention_bytes or len(self.log.segment_base_offsets) == 1 or not deleted
        )

    @precondition(lambda self: self.batches)
    @rule(data=st.data())
    def truncate(self, data: st.DataObject) -> None:
        keep = data.draw(st.integers(0, len(self.batches) - 1))
        self.log.truncate_to(self.batches[keep].base)
        del self.batches[keep:]
        self.synced = keep  # truncation ends with a flush
        if self.batches:
            self.epoch = max(self.epoch, self.batches[-1].epoch)

    @rule()
    def close_and_reopen(self) -> None:
        self.log.close()
        self.reopen()
        self.synced = len(self.batches)

    @rule(seed=st.integers(0, 2**32), torn=st.booleans())
    def crash_and_reopen(self, seed: int, torn: bool) -> None:
        self.storage.crash(rng=random.Random(seed) if torn else None)
        self.reopen()
        del self.batches[self.synced :]
        self.synced = len(self.batches)

    @invariant()
    def offsets_match(self) -> None:
        assert self.log.log_start_offset == self.start
        assert self.log.log_end_offset == self.end
        assert self.log.flushed_offset >= (
            self.batches[self.synced - 1].last + 1 if self.synced else self.start
        )

    @invariant()
    def whole_log_reads_back(self) -> None:
        got = self.log.read(self.start, max_bytes=1 << 20)
        assert got == b"".join(b.data for b in self.batches)
        headers = [h for _, h in self.log.batches_headers()]
        assert [h.base_offset for h in headers] == [b.base for b in self.batches]

    @invariant()
    def epochs_match(self) -> None:
        epochs = [b.epoch for b in self.batches]
        for i, stored in enumerate(self.batches):
            if i and epochs[i - 1] == stored.epoch:
                continue
            later = [b.base for b in self.batches if b.epoch > stored.epoch]
            expected_end = later[0] if later else self.end
            assert self.log.end_offset_for_epoch(stored.epoch) == (stored.epoch, expected_end)
        if self.batches:
            assert self.log.latest_epoch == self.batches[-1].epoch

    def teardown(self) -> None:
        self.log.close()


LogMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLogModel = LogMachine.TestCase


def test_model_batches_parse() -> None:
    raw = make_batch([b"a"] * 3)
    assert [p for p, _ in iter_batches(raw)] == [0]
    assert parse_header(raw).record_count == 3
