"""Retention on a replicated log: the pure decisions and the log operations they
drive. Replica managers running retention while they replicate are tested in
``test_replica_manager.py``."""

from __future__ import annotations

import pytest

from rift_broker.group import OFFSETS_TOPIC
from rift_broker.log import LogConfig, OffsetOutOfRangeError, PartitionLog
from rift_broker.log.retention import SegmentStats, deletable_segments
from rift_broker.records import build_batch
from rift_broker.replication import (
    follower_log_start,
    out_of_range_restart,
    retention_limit,
)
from rift_broker.server.topics import replica_log_config, topic_log_config
from rift_broker.storage import MemoryStorage

# -- the pure decisions ------------------------------------------------------------


@pytest.mark.parametrize(
    ("high_watermark", "flushed", "limit"),
    [(10, 12, 10), (12, 10, 10), (-1, 5, 0), (0, 0, 0)],
)
def test_retention_limit_is_the_lower_of_hw_and_flushed(
    high_watermark: int, flushed: int, limit: int
) -> None:
    assert retention_limit(high_watermark=high_watermark, flushed_offset=flushed) == limit


@pytest.mark.parametrize(
    ("local", "leader", "hw", "flushed", "expected"),
    [
        (0, 5, 10, 10, 5),  # follows the leader up
        (7, 5, 10, 10, 7),  # never moves down
        (0, 50, 10, 10, 10),  # capped by what it knows committed
        (0, 50, 20, 12, 12),  # and by what it holds durably
        (3, -1, 10, 10, 3),  # not reported
    ],
)
def test_follower_log_start(local: int, leader: int, hw: int, flushed: int, expected: int) -> None:
    start = follower_log_start(
        log_start_offset=local,
        leader_log_start_offset=leader,
        high_watermark=hw,
        flushed_offset=flushed,
    )
    assert start == expected


def test_out_of_range_restarts_only_below_the_leaders_start() -> None:
    assert out_of_range_restart(log_end_offset=4, leader_log_start_offset=9) == 9
    assert out_of_range_restart(log_end_offset=9, leader_log_start_offset=9) is None
    assert out_of_range_restart(log_end_offset=20, leader_log_start_offset=3) is None
    assert out_of_range_restart(log_end_offset=4, leader_log_start_offset=-1) is None


def _segments(*bases: int, size: int = 100) -> list[SegmentStats]:
    return [SegmentStats(base_offset=b, size=size, max_timestamp=0) for b in bases]


def test_deletable_segments_stops_at_max_offset() -> None:
    config = LogConfig(retention_bytes=0, retention_ms=-1)
    segments = _segments(0, 10, 20, 30)
    everything = deletable_segments(segments, config=config, now_ms=0, log_start_offset=0)
    assert everything == 3  # never the active one
    for limit, count in ((0, 0), (9, 0), (10, 1), (19, 1), (25, 2), (30, 3), (99, 3)):
        got = deletable_segments(
            segments, config=config, now_ms=0, log_start_offset=0, max_offset=limit
        )
        assert got == count, limit


def test_topic_configs_override_the_brokers_log_settings() -> None:
    base = LogConfig(segment_bytes=1 << 20, retention_bytes=-1)
    config = topic_log_config(base, {"retention.bytes": "500", "segment.ms": "60000"})
    assert (config.retention_bytes, config.segment_ms) == (500, 60000)
    assert config.segment_bytes == base.segment_bytes
    assert topic_log_config(base, {"min.insync.replicas": "2"}) is base


def test_committed_offsets_are_never_subject_to_retention() -> None:
    base = LogConfig(retention_bytes=1000, retention_ms=1000)
    offsets = replica_log_config(base, OFFSETS_TOPIC, {"retention.ms": "5"})
    assert (offsets.retention_ms, offsets.retention_bytes) == (-1, -1)
    assert replica_log_config(base, "t", {}).retention_bytes == 1000
    assert replica_log_config(base, "t", {"retention.ms": "nope"}) == base  # logged, not fatal


# -- the log operations ------------------------------------------------------------

DIR = "/logs/t-0"


def open_log(storage: MemoryStorage, **settings: int) -> PartitionLog:
    config = LogConfig(**{"segment_bytes": 200, "retention_ms": -1, **settings})  # type: ignore[arg-type]
    return PartitionLog.open(DIR, config=config, storage=storage, now_ms=0)


def batch(value: bytes = b"v" * 50) -> bytes:
    return build_batch([value])


def test_apply_retention_never_passes_max_offset() -> None:
    log = open_log(MemoryStorage(), retention_bytes=0)
    for _ in range(6):
        log.append(batch(), leader_epoch=0, now_ms=0)
    log.flush()
    assert log.segment_base_offsets == (0, 1, 2, 3, 4, 5)  # one batch per segment
    assert log.apply_retention(0, max_offset=3) == 3
    assert log.log_start_offset == 3
    assert log.apply_retention(0, max_offset=3) == 0
    assert log.apply_retention(0) == 2  # without a limit: all but the active segment


def test_advance_log_start_then_retention_deletes_below_it() -> None:
    storage = MemoryStorage()
    log = open_log(storage)
    for _ in range(5):
        log.append(batch(), leader_epoch=0, now_ms=0)
    log.flush()
    assert log.advance_log_start(3)
    assert not log.advance_log_start(2)  # only up
    with pytest.raises(OffsetOutOfRangeError):
        log.read(2, max_bytes=1000)
    assert log.apply_retention(0, max_offset=5) == 3  # retention is off; the start rule
    assert log.segment_base_offsets == (3, 4)
    log.close()
    assert open_log(storage).log_start_offset == 3


def test_advance_log_start_refuses_to_pass_durable_data() -> None:
    log = open_log(MemoryStorage())
    log.append(batch(), leader_epoch=0, now_ms=0)
    with pytest.raises(OffsetOutOfRangeError):
        log.advance_log_start(1)  # not flushed yet


def test_truncate_fully_and_start_at_restarts_an_empty_log_there() -> None:
    storage = MemoryStorage()
    log = open_log(storage)
    for _ in range(3):
        log.append(batch(), leader_epoch=2, now_ms=0)
    log.flush()
    with pytest.raises(OffsetOutOfRangeError):
        log.truncate_fully_and_start_at(1, now_ms=0)  # never a cut inside the log
    log.truncate_fully_and_start_at(10, now_ms=0)
    assert (log.log_start_offset, log.log_end_offset, log.flushed_offset) == (10, 10, 10)
    assert log.segment_base_offsets == (10,)
    assert log.latest_epoch is None
    assert not [n for n in storage.list_dir(DIR) if n.startswith("0" * 20)]
    leader = open_log(MemoryStorage())
    for _ in range(11):
        leader.append(batch(), leader_epoch=3, now_ms=0)
    log.append_replicated(leader.read(10, max_bytes=1000), now_ms=0)
    log.close()
    reopened = open_log(storage)
    assert (reopened.log_start_offset, reopened.log_end_offset) == (10, 11)
    assert reopened.latest_epoch == 3


def test_a_crash_after_persisting_the_new_start_recovers_to_it() -> None:
    """The start is persisted first; old segments that survive are below it."""
    storage = MemoryStorage()
    log = open_log(storage)
    for _ in range(3):
        log.append(batch(), leader_epoch=0, now_ms=0)
    log.flush()
    log.close()
    from rift_broker.log.checkpoint import write_checkpoint
    from rift_broker.log.recovery import LOG_START_FILE

    write_checkpoint(storage, f"{DIR}/{LOG_START_FILE}", ["10"])  # then the crash
    reopened = open_log(storage)
    # The old records are unreadable; the follower's next fetch is out of range
    # and restarts it at the leader's start again.
    assert reopened.log_start_offset == reopened.log_end_offset == 3
    reopened.truncate_fully_and_start_at(10, now_ms=0)
    assert reopened.segment_base_offsets == (10,)
