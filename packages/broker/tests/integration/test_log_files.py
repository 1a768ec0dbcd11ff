"""The log on real files (OsStorage under tmp_path): storage contract, reopen, torn
tails cut with the OS, corruption reports, and group commit with real fsync threads."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from rift_broker.log import AsyncGroupCommitter, CorruptBatchError, LogConfig, PartitionLog
from rift_broker.records import build_batch, iter_batches
from rift_broker.storage import OsStorage, StorageFile

pytestmark = pytest.mark.integration

CONFIG = LogConfig(segment_bytes=4096, index_interval_bytes=512)


class CountingFile:
    def __init__(self, inner: StorageFile, counter: list[int]):
        self._inner = inner
        self._counter = counter

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    def fsync(self) -> None:
        self._counter[0] += 1
        self._inner.fsync()


class CountingStorage(OsStorage):
    def __init__(self) -> None:
        self.fsyncs = [0]

    def open(self, path: str, *, create: bool = True) -> StorageFile:
        return CountingFile(super().open(path, create=create), self.fsyncs)  # type: ignore[return-value]


def test_os_storage_contract(tmp_path: Path) -> None:
    storage = OsStorage()
    directory = str(tmp_path / "a" / "b")
    storage.make_dirs(directory)
    file = storage.open(f"{directory}/f")
    assert file.append(b"abc") == 0
    assert file.append(memoryview(b"def")) == 3
    file.fsync()
    assert file.read(1, 10) == b"bcdef"
    file.truncate(2)
    assert file.size() == 2
    file.close()
    storage.rename(f"{directory}/f", f"{directory}/g")
    assert storage.list_dir(directory) == ["g"]
    with pytest.raises(FileNotFoundError):
        storage.open(f"{directory}/f", create=False)
    storage.delete(f"{directory}/g")
    assert not storage.exists(f"{directory}/g")


def test_append_close_reopen_across_segments(tmp_path: Path) -> None:
    directory = str(tmp_path / "p0")
    log = PartitionLog.open(directory, config=CONFIG, storage=OsStorage(), now_ms=0)
    for i in range(200):
        log.append(build_batch([b"v" * 20] * 5, base_timestamp=i), leader_epoch=i // 50, now_ms=i)
    data = log.read(0, max_bytes=1 << 20)
    log.close()
    assert len([n for n in os.listdir(directory) if n.endswith(".log")]) > 5
    reopened = PartitionLog.open(directory, config=CONFIG, storage=OsStorage(), now_ms=1000)
    assert reopened.recovery_report.clean
    assert reopened.log_end_offset == 1000
    assert reopened.read(0, max_bytes=1 << 20) == data
    assert reopened.end_offset_for_epoch(1) == (1, 500)
    reopened.close()


def test_torn_tail_cut_with_the_os_at_every_byte(tmp_path: Path) -> None:
    directory = tmp_path / "p1"
    log = PartitionLog.open(str(directory), config=CONFIG, storage=OsStorage(), now_ms=0)
    for i in range(4):
        log.append(build_batch([b"t" * 30] * (i + 1)), leader_epoch=0, now_ms=i)
    log.close()
    path = directory / f"{0:020d}.log"
    whole = path.read_bytes()
    last = [p for p, _ in iter_batches(whole)][-1]
    for cut in range(last, len(whole)):
        path.write_bytes(whole[:cut])
        reopened = PartitionLog.open(str(directory), config=CONFIG, storage=OsStorage(), now_ms=9)
        assert reopened.log_end_offset == 6
        info = reopened.append(build_batch([b"n"]), leader_epoch=0, now_ms=10)
        assert info.base_offset == 6
        reopened.close()
        assert path.read_bytes()[:last] == whole[:last]


def test_corruption_in_a_closed_segment_names_file_and_position(tmp_path: Path) -> None:
    directory = tmp_path / "p2"
    log = PartitionLog.open(str(directory), config=CONFIG, storage=OsStorage(), now_ms=0)
    for i in range(100):
        log.append(build_batch([b"c" * 50] * 2), leader_epoch=0, now_ms=i)
    log.close()
    path = directory / f"{0:020d}.log"
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0x10
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptBatchError) as caught:
        PartitionLog.open(str(directory), config=CONFIG, storage=OsStorage(), now_ms=0)
    assert caught.value.path == str(path)
    assert caught.value.position == [p for p, _ in iter_batches(bytes(raw), validate=False)][-1]


def test_group_commit_with_real_fsync_threads(tmp_path: Path) -> None:
    directory = str(tmp_path / "p3")
    storage = CountingStorage()
    config = LogConfig(flush_policy="group")
    log = PartitionLog.open(directory, config=config, storage=storage, now_ms=0)
    log.append(build_batch([b"w"]), leader_epoch=0, now_ms=0)
    log.flush()
    before = storage.fsyncs[0]

    async def appender(committer: AsyncGroupCommitter, count: int) -> None:
        for _ in range(count):
            info = await committer.append(build_batch([b"x" * 100] * 10), leader_epoch=0)
            assert committer.log.flushed_offset > info.last_offset

    async def main() -> None:
        committer = AsyncGroupCommitter(log)
        await asyncio.gather(*(appender(committer, 20) for _ in range(50)))
        await committer.close()

    asyncio.run(main())
    fsyncs = storage.fsyncs[0] - before
    assert fsyncs < 1000 / 2, f"{fsyncs} fsyncs for 1000 appends: no sharing"
    reopened = PartitionLog.open(directory, config=config, storage=OsStorage(), now_ms=0)
    assert reopened.log_end_offset == 1 + 1000 * 10
