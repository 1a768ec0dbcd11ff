"""Offset and time indexes: every offset finds its batch, across segments and after
the indexes were lost or damaged and rebuilt."""

from __future__ import annotations

import pytest

from rift_broker.log import LogConfig, PartitionLog
from rift_broker.records import build_batch, parse_header
from rift_broker.storage import MemoryStorage

DIR = "/logs/i-0"
CONFIG = LogConfig(segment_bytes=2000, index_interval_bytes=200)


def make_log(storage: MemoryStorage) -> tuple[PartitionLog, list[tuple[int, int, int]]]:
    log = PartitionLog.open(DIR, config=CONFIG, storage=storage, now_ms=0)
    batches = []  # (base, last, max timestamp)
    for i in range(120):
        records = 1 + i % 4
        raw = build_batch([b"v" * (i % 50)] * records, base_timestamp=1000 + 10 * i)
        info = log.append(raw, leader_epoch=0, now_ms=i)
        batches.append((info.base_offset, info.last_offset, info.max_timestamp))
    return log, batches


def index_files(storage: MemoryStorage) -> dict[str, bytes]:
    return {
        name: storage.contents(f"{DIR}/{name}")
        for name in storage.list_dir(DIR)
        if name.endswith((".index", ".timeindex"))
    }


def assert_every_offset_found(log: PartitionLog, batches: list[tuple[int, int, int]]) -> None:
    for base, last, _ in batches:
        for offset in range(base, last + 1):
            header = parse_header(log.read(offset, max_bytes=1))
            assert (header.base_offset, header.last_offset) == (base, last)


def test_every_offset_finds_its_batch_across_segments() -> None:
    log, batches = make_log(MemoryStorage())
    assert len(log.segment_base_offsets) > 5
    assert_every_offset_found(log, batches)


def test_index_entries_are_sparse_and_point_at_batch_starts() -> None:
    storage = MemoryStorage()
    log, _ = make_log(storage)
    log.close()
    files = index_files(storage)
    for name, raw in files.items():
        if name.endswith(".index"):
            assert raw, name
            assert len(raw) % 8 == 0
            assert len(files[name.replace(".index", ".timeindex")]) == len(raw) // 8 * 12
            entries = [
                (int.from_bytes(raw[i : i + 4], "big"), int.from_bytes(raw[i + 4 : i + 8], "big"))
                for i in range(0, len(raw), 8)
            ]
            assert len(entries) <= CONFIG.segment_bytes // CONFIG.index_interval_bytes + 1
            log_bytes = storage.contents(f"{DIR}/{name.replace('.index', '.log')}")
            base = int(name.split(".")[0])
            for rel, pos in entries:
                assert parse_header(log_bytes, pos).base_offset == base + rel


@pytest.mark.parametrize("damage", ["delete", "garbage", "out-of-order", "torn-entry"])
def test_index_rebuild_is_identical_and_complete(damage: str) -> None:
    storage = MemoryStorage()
    log, batches = make_log(storage)
    log.close()
    original = index_files(storage)
    for name, raw in original.items():
        path = f"{DIR}/{name}"
        if damage == "delete":
            storage.delete(path)
        elif damage == "garbage":
            storage.replace_contents(path, b"\xff" * len(raw))
        elif damage == "out-of-order" and name.endswith(".index"):
            storage.replace_contents(path, raw[8:16] + raw[0:8] + raw[16:])
        elif damage == "torn-entry":
            storage.replace_contents(path, raw[:-3])
    reopened = PartitionLog.open(DIR, config=CONFIG, storage=storage, now_ms=500)
    assert reopened.log_end_offset == batches[-1][1] + 1
    assert_every_offset_found(reopened, batches)
    reopened.close()
    assert index_files(storage) == original


def test_offset_for_timestamp_across_segments() -> None:
    log, batches = make_log(MemoryStorage())
    for base, _, max_ts in batches:
        assert log.offset_for_timestamp(max_ts) == (base, max_ts)
        assert log.offset_for_timestamp(max_ts - 5) == (base, max_ts)
    assert log.offset_for_timestamp(0) == (0, batches[0][2])
    assert log.offset_for_timestamp(batches[-1][2] + 1) is None
