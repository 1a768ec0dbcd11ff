"""The partition log's API: validation, stamping, reads, rolls, retention, epochs,
the follower path and truncation."""

from __future__ import annotations

import pytest

from rift_broker.log import (
    BatchTooLargeError,
    CorruptBatchError,
    InvalidEpochError,
    LogConfig,
    LogStoppedError,
    OffsetOutOfRangeError,
    PartitionLog,
    UnexpectedOffsetError,
)
from rift_broker.records import build_batch, iter_batches, parse_header, validate_batch
from rift_broker.storage import MemoryStorage

DIR = "/logs/a-0"


def open_log(storage: MemoryStorage | None = None, **settings: int) -> PartitionLog:
    config = LogConfig(**{"index_interval_bytes": 100, "retention_ms": -1, **settings})  # type: ignore[arg-type]
    return PartitionLog.open(DIR, config=config, storage=storage or MemoryStorage(), now_ms=0)


def batch(records: int = 1, size: int = 10, ts: int = 0) -> bytes:
    return build_batch([b"a" * size] * records, base_timestamp=ts)


def test_append_stamps_offsets_and_epoch_in_place_without_breaking_the_crc() -> None:
    log = open_log()
    log.append(batch(3), leader_epoch=0, now_ms=0)
    raw = bytearray(batch(2))
    info = log.append(raw, leader_epoch=4, now_ms=1)
    assert (info.base_offset, info.last_offset, info.position) == (3, 4, len(batch(3)))
    header = validate_batch(raw)
    assert (header.base_offset, header.partition_leader_epoch) == (3, 4)
    assert log.read(3, max_bytes=1000) == bytes(raw)
    assert log.log_end_offset == 5


@pytest.mark.parametrize(
    ("mangle", "match"),
    [
        (lambda b: b[:16] + b"\x01" + b[17:], "magic"),
        (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "CRC"),
        (lambda b: b[:40], "shorter|present"),
        (lambda b: b + b, "more than one batch"),
    ],
)
def test_append_rejects_corrupt_batches(mangle, match) -> None:  # type: ignore[no-untyped-def]
    log = open_log()
    with pytest.raises(CorruptBatchError, match=match):
        log.append(mangle(batch(2)), leader_epoch=0, now_ms=0)
    assert log.log_end_offset == 0


def test_append_limits() -> None:
    log = open_log(max_batch_bytes=200)
    with pytest.raises(BatchTooLargeError):
        log.append(batch(1, 300), leader_epoch=0, now_ms=0)
    log.append(batch(), leader_epoch=2, now_ms=0)
    with pytest.raises(InvalidEpochError):
        log.append(batch(), leader_epoch=1, now_ms=0)


def test_read_semantics() -> None:
    log = open_log()
    sizes = [len(batch(2, 20))] * 5
    for _ in range(5):
        log.append(batch(2, 20), leader_epoch=0, now_ms=0)
    assert log.read(10, max_bytes=100) == b""
    assert len(log.read(3, max_bytes=0)) == sizes[0]  # always one whole batch
    assert parse_header(log.read(3, max_bytes=0)).base_offset == 2
    assert len(log.read(0, max_bytes=sizes[0] * 2 + 1)) == sizes[0] * 2
    assert log.read(4, max_bytes=1000, max_offset=4) == b""
    got = log.read(0, max_bytes=1000, max_offset=5)
    assert [h.base_offset for _, h in iter_batches(got)] == [0, 2, 4]
    for bad in (-1, 11):
        with pytest.raises(OffsetOutOfRangeError):
            log.read(bad, max_bytes=10)


def test_roll_by_size_and_age() -> None:
    log = open_log(segment_bytes=300, segment_ms=1000)
    for i in range(6):
        log.append(batch(1, 50), leader_epoch=0, now_ms=i)
    by_size = log.segment_base_offsets
    assert len(by_size) == 3
    assert not log.maybe_roll(now_ms=900)
    assert log.maybe_roll(now_ms=2000)
    assert log.segment_base_offsets == (*by_size, 6)
    assert not log.maybe_roll(now_ms=5000)  # an empty active segment never rolls
    log.append(batch(), leader_epoch=0, now_ms=5000)
    log.append(batch(), leader_epoch=0, now_ms=6000)  # aged: rolls before writing
    assert log.segment_base_offsets[-2:] == (6, 7)


def test_retention_by_time_never_deletes_the_active_segment() -> None:
    log = open_log(segment_bytes=250, retention_ms=1000)
    for i in range(6):
        log.append(batch(1, 50, ts=i * 100), leader_epoch=0, now_ms=i)
    assert log.segment_base_offsets == (0, 2, 4)
    assert log.apply_retention(now_ms=1100) == 0  # segment 0 holds ts 0 and 100
    assert log.apply_retention(now_ms=1150) == 1
    assert log.log_start_offset == 2
    assert log.apply_retention(now_ms=10_000) == 1
    assert log.log_start_offset == log.segment_base_offsets[0] == 4
    assert log.read(4, max_bytes=1000)
    with pytest.raises(OffsetOutOfRangeError):
        log.read(1, max_bytes=1000)


def test_retention_by_size() -> None:
    log = open_log(segment_bytes=200, retention_bytes=300)
    for i in range(10):
        log.append(batch(1, 50), leader_epoch=0, now_ms=i)
    log.apply_retention(now_ms=0)
    assert log.size_bytes >= 300
    assert log.size_bytes - 200 < 300


def test_epoch_cache_and_offset_for_leader_epoch() -> None:
    log = open_log()
    for epoch, count in ((1, 3), (3, 2), (4, 1)):
        for _ in range(count):
            log.append(batch(2), leader_epoch=epoch, now_ms=0)
    assert log.leader_epoch_cache.as_dict() == {1: 0, 3: 6, 4: 10}
    assert log.end_offset_for_epoch(4) == (4, 12)
    assert log.end_offset_for_epoch(3) == (3, 10)
    assert log.end_offset_for_epoch(2) == (1, 6)
    assert log.end_offset_for_epoch(0) == (0, 0)
    assert log.end_offset_for_epoch(7) == (-1, -1)
    log.truncate_to(7)  # inside the batch 6..7: the whole batch goes
    assert log.log_end_offset == 6
    assert log.leader_epoch_cache.as_dict() == {1: 0}
    assert log.end_offset_for_epoch(1) == (1, 6)


def test_follower_path_keeps_offsets_and_epochs() -> None:
    leader = open_log()
    for epoch in (0, 0, 2):
        leader.append(batch(3), leader_epoch=epoch, now_ms=0)
    follower = open_log(MemoryStorage())
    assert follower.append_replicated(b"", now_ms=0) is None
    data = leader.read(0, max_bytes=1 << 20)
    info = follower.append_replicated(data, now_ms=0)
    assert info is not None
    assert (info.base_offset, info.last_offset) == (0, 8)
    assert follower.read(0, max_bytes=1 << 20) == data
    assert follower.leader_epoch_cache.as_dict() == {0: 0, 2: 6}
    with pytest.raises(UnexpectedOffsetError):
        follower.append_replicated(data, now_ms=0)
    broken = bytearray(leader.read(6, max_bytes=100))
    broken[-1] ^= 0xFF
    with pytest.raises(CorruptBatchError):
        follower.append_replicated(bytes(broken), now_ms=0)


def test_truncate_then_append_and_reopen() -> None:
    storage = MemoryStorage()
    log = open_log(storage, segment_bytes=200)
    for _ in range(8):
        log.append(batch(2, 40), leader_epoch=0, now_ms=0)
    log.truncate_to(6)
    assert log.log_end_offset == 6
    assert max(log.segment_base_offsets) <= 6
    log.append(batch(1), leader_epoch=1, now_ms=0)
    log.close()
    reopened = open_log(storage, segment_bytes=200)
    assert reopened.log_end_offset == 7
    assert reopened.recovery_report.clean
    assert [h.base_offset for _, h in reopened.batches_headers(from_offset=3)] == [2, 4, 6]
    with pytest.raises(LogStoppedError):
        log.read(0, max_bytes=10)


def test_config_rejects_bad_values_with_clear_messages() -> None:
    with pytest.raises(ValueError, match="segment_bytes"):
        LogConfig(segment_bytes=10)
    with pytest.raises(ValueError, match="flush_policy"):
        LogConfig(flush_policy="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="retention_bytes"):
        LogConfig(retention_bytes=-2)
