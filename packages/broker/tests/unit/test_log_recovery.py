"""Recovery at open: closed-segment corruption, crashes around rolls and retention,
leftover files, and the persisted side files."""

from __future__ import annotations

import pytest

from rift_broker.log import CorruptBatchError, LogConfig, LogStoppedError, PartitionLog
from rift_broker.log.checkpoint import write_checkpoint
from rift_broker.records import build_batch
from rift_broker.storage import MemoryStorage

DIR = "/logs/r-0"
CONFIG = LogConfig(segment_bytes=400, index_interval_bytes=100, retention_ms=-1)


def batch(size: int = 50, records: int = 2, ts: int = 0) -> bytes:
    return build_batch([b"r" * size] * records, base_timestamp=ts)


def open_log(storage: MemoryStorage, config: LogConfig = CONFIG, now: int = 0) -> PartitionLog:
    return PartitionLog.open(DIR, config=config, storage=storage, now_ms=now)


def filled(storage: MemoryStorage, count: int = 12, *, epoch: int = 0) -> PartitionLog:
    log = open_log(storage)
    for i in range(count):
        log.append(batch(ts=i), leader_epoch=epoch + i // 4, now_ms=i)
    return log


def test_corrupt_batch_in_durable_closed_segment_is_reported_with_position() -> None:
    storage = MemoryStorage()
    log = filled(storage)
    first = f"{DIR}/{log.segment_base_offsets[0]:020d}.log"
    log.close()
    raw = bytearray(storage.contents(first))
    second = int.from_bytes(raw[8:12], "big") + 12  # start of the second batch
    raw[second + 70] ^= 0x01
    storage.replace_contents(first, bytes(raw))
    with pytest.raises(CorruptBatchError) as caught:
        open_log(storage)
    assert caught.value.path == first
    assert caught.value.position == second
    assert "CRC" in caught.value.reason
    assert first in str(caught.value)


def test_crash_after_roll_truncates_unsynced_closed_segment_and_drops_later_ones() -> None:
    storage = MemoryStorage()
    log = filled(storage, count=3)
    log.flush()
    synced_end = log.log_end_offset
    for i in range(10):  # rolls several times, nothing synced
        log.append(batch(ts=i), leader_epoch=0, now_ms=10 + i)
    assert len(log.segment_base_offsets) > 2
    storage.crash()
    reopened = open_log(storage)
    assert reopened.log_end_offset == synced_end
    assert reopened.segment_base_offsets[-1] <= synced_end
    actions = {e.action for e in reopened.recovery_report.events}
    assert "deleted" in actions


def test_leftover_files_are_removed() -> None:
    storage = MemoryStorage()
    filled(storage, count=2).close()
    storage.replace_contents(f"{DIR}/{7:020d}.index", b"")
    storage.replace_contents(f"{DIR}/recovery-point.tmp", b"junk")
    reopened = open_log(storage)
    segment_files = [f"{0:020d}.log", f"{0:020d}.index", f"{0:020d}.timeindex"]
    expected = sorted([*segment_files, "leader-epoch-checkpoint", "recovery-point"])
    assert storage.list_dir(DIR) == expected
    assert len(reopened.recovery_report.events) == 2


def test_retention_moves_log_start_and_it_survives_reopen() -> None:
    storage = MemoryStorage()
    config = LogConfig(segment_bytes=400, index_interval_bytes=100, retention_bytes=500)
    log = PartitionLog.open(DIR, config=config, storage=storage, now_ms=0)
    for i in range(20):
        log.append(batch(ts=i), leader_epoch=0, now_ms=i)
    deleted = log.apply_retention(100)
    assert deleted > 0
    start = log.log_start_offset
    assert start == log.segment_base_offsets[0]
    log.close()
    reopened = PartitionLog.open(DIR, config=config, storage=storage, now_ms=200)
    assert reopened.log_start_offset == start
    assert reopened.leader_epoch_cache.entries[0].start_offset == start


def test_crash_between_retention_checkpoint_and_delete_finishes_the_delete() -> None:
    storage = MemoryStorage()
    log = filled(storage)
    bases = log.segment_base_offsets
    log.close()
    write_checkpoint(storage, f"{DIR}/log-start-offset", [str(bases[2])])
    reopened = open_log(storage)
    assert reopened.segment_base_offsets == bases[2:]
    assert reopened.log_start_offset == bases[2]


def test_log_start_inside_a_segment_is_kept_from_the_checkpoint() -> None:
    storage = MemoryStorage()
    log = filled(storage)
    log.close()
    write_checkpoint(storage, f"{DIR}/log-start-offset", ["2"])
    assert open_log(storage).log_start_offset == 2


def test_missing_epoch_checkpoint_is_rebuilt_from_batch_headers() -> None:
    storage = MemoryStorage()
    log = filled(storage, epoch=3)
    expected = log.leader_epoch_cache.entries
    log.close()
    storage.delete(f"{DIR}/leader-epoch-checkpoint")
    assert open_log(storage).leader_epoch_cache.entries == expected


def test_epochs_beyond_the_recovered_end_are_forgotten() -> None:
    storage = MemoryStorage()
    log = filled(storage, count=4)
    log.flush()
    log.append(batch(), leader_epoch=9, now_ms=50)
    assert log.latest_epoch == 9
    storage.crash()
    reopened = open_log(storage)
    assert reopened.latest_epoch == 0
    assert reopened.end_offset_for_epoch(9) == (-1, -1)


def test_failed_fsync_stops_the_log_for_good() -> None:
    storage = MemoryStorage()
    log = filled(storage, count=2)
    storage.fail_fsync = True
    with pytest.raises(LogStoppedError, match="fsync failed"):
        log.flush()
    storage.fail_fsync = False
    for call in (
        log.flush,
        lambda: log.append(batch(), leader_epoch=0, now_ms=0),
        lambda: log.read(0, max_bytes=10),
        lambda: log.truncate_to(0),
        lambda: log.apply_retention(0),
    ):
        with pytest.raises(LogStoppedError):
            call()
    log.close()  # releases files without flushing
    storage.crash()
    assert open_log(storage).log_end_offset == 0


def test_recovery_point_marks_closed_segments_durable_after_a_flush() -> None:
    storage = MemoryStorage()
    log = filled(storage)
    log.flush()
    assert storage.contents(f"{DIR}/recovery-point") == f"0\n1\n{log.log_end_offset}\n".encode()
