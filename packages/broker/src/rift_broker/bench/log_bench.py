"""Append throughput of the partition log against the disk's raw write+fsync speed.

    python -m rift_broker.bench.log_bench --dir /tmp/logbench --seconds 5

Three runs on the same disk, one after the other, each for ``--seconds``:

(a) raw:   a plain loop of 16 KB ``write`` + ``fsync`` on one file (the baseline);
(b) each:  ``PartitionLog.append`` of a 16 KB batch of 100-byte records, then
           ``flush()``, in a loop (fsync per append);
(c) group: 100 asyncio tasks appending through ``AsyncGroupCommitter`` (policy
           "group"), each waiting until its batch is durable.

Figures, not assertions: the ratios (b)/(a) and (c)/(a) compare batches per second.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from rift_broker.log import AsyncGroupCommitter, LogConfig, PartitionLog
from rift_broker.records import build_batch
from rift_broker.storage import OsStorage, StorageFile

BATCH_BYTES = 16 * 1024
RECORD_BYTES = 100
APPENDERS = 100


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    name: str
    batches: int
    records: int
    bytes: int
    fsyncs: int
    seconds: float
    latencies: list[float]

    def line(self) -> str:
        lat = sorted(self.latencies)
        p50 = statistics.median(lat) * 1000
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
        return (
            f"{self.name:<28} {self.batches / self.seconds:>10.0f}"
            f" {self.records / self.seconds:>11.0f}"
            f" {self.bytes / self.seconds / 1e6:>8.1f} {self.fsyncs:>8d}"
            f" {self.batches / max(self.fsyncs, 1):>9.1f} {p50:>8.2f} {p99:>8.2f}"
        )


def make_batch() -> tuple[bytes, int]:
    """The largest batch of 100-byte records that fits in 16 KB."""
    count = 1
    while len(build_batch([b"r" * RECORD_BYTES] * (count + 1))) <= BATCH_BYTES:
        count += 1
    return build_batch([b"r" * RECORD_BYTES] * count), count


class CountingStorage(OsStorage):
    def __init__(self) -> None:
        self.fsyncs = 0

    def open(self, path: str, *, create: bool = True) -> StorageFile:
        inner = super().open(path, create=create)
        original: Callable[[], None] = inner.fsync

        def counted() -> None:
            self.fsyncs += 1
            original()

        inner.fsync = counted  # type: ignore[method-assign]
        return inner


def bench_raw(directory: str, seconds: float, records: int) -> Result:
    block = os.urandom(BATCH_BYTES)
    fd = os.open(f"{directory}/raw.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    latencies: list[float] = []
    try:
        deadline = time.perf_counter() + seconds
        start = time.perf_counter()
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            os.write(fd, block)
            os.fsync(fd)
            latencies.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
    finally:
        os.close(fd)
    n = len(latencies)
    return Result(
        name="(a) raw write+fsync 16KB",
        batches=n,
        records=n * records,  # as many records as a 16 KB batch would hold
        bytes=n * BATCH_BYTES,
        fsyncs=n,
        seconds=elapsed,
        latencies=latencies,
    )


def bench_each(directory: str, seconds: float, batch: bytes, records: int) -> Result:
    storage = CountingStorage()
    config = LogConfig(flush_policy="each")
    log = PartitionLog.open(f"{directory}/each", config=config, storage=storage, now_ms=0)
    log.append(batch, leader_epoch=0, now_ms=0)  # the epoch checkpoint is not measured
    log.flush()
    before = storage.fsyncs
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        log.append(batch, leader_epoch=0, now_ms=int(t0 * 1000))
        log.flush()
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    log.close()
    n = len(latencies)
    return Result(
        name="(b) log, fsync per append",
        batches=n,
        records=n * records,
        bytes=n * len(batch),
        fsyncs=storage.fsyncs - before,
        seconds=elapsed,
        latencies=latencies,
    )


def bench_group(directory: str, seconds: float, batch: bytes, records: int) -> Result:
    storage = CountingStorage()
    config = LogConfig(flush_policy="group")
    log = PartitionLog.open(f"{directory}/group", config=config, storage=storage, now_ms=0)
    log.append(batch, leader_epoch=0, now_ms=0)
    log.flush()
    before = storage.fsyncs
    latencies: list[float] = []

    async def appender(committer: AsyncGroupCommitter, deadline: float) -> None:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            await committer.append(batch, leader_epoch=0)
            latencies.append(time.perf_counter() - t0)

    async def main() -> float:
        committer = AsyncGroupCommitter(log)
        start = time.perf_counter()
        deadline = start + seconds
        await asyncio.gather(*(appender(committer, deadline) for _ in range(APPENDERS)))
        elapsed = time.perf_counter() - start
        await committer.drain()
        return elapsed

    elapsed = asyncio.run(main())
    fsyncs = storage.fsyncs - before
    log.close()
    n = len(latencies)
    return Result(
        name=f"(c) group commit, {APPENDERS} tasks",
        batches=n,
        records=n * records,
        bytes=n * len(batch),
        fsyncs=fsyncs,
        seconds=elapsed,
        latencies=latencies,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dir", required=True, help="scratch directory on the disk to measure")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each run")
    args = parser.parse_args(argv)
    directory = os.path.abspath(args.dir)
    for sub in ("each", "group"):
        shutil.rmtree(f"{directory}/{sub}", ignore_errors=True)
    os.makedirs(directory, exist_ok=True)
    batch, records = make_batch()
    print(
        f"dir={directory} seconds={args.seconds} batch={len(batch)} bytes "
        f"({records} records of {RECORD_BYTES} bytes)"
    )
    raw = bench_raw(directory, args.seconds, records)
    each = bench_each(directory, args.seconds, batch, records)
    group = bench_group(directory, args.seconds, batch, records)
    print(
        f"{'run':<28} {'batches/s':>10} {'records/s':>11} {'MB/s':>8} {'fsyncs':>8}"
        f" {'b/fsync':>9} {'p50 ms':>8} {'p99 ms':>8}"
    )
    for result in (raw, each, group):
        print(result.line())
    raw_rate = raw.batches / raw.seconds
    print(f"ratio (b)/(a) = {each.batches / each.seconds / raw_rate:.2f}")
    print(f"ratio (c)/(a) = {group.batches / group.seconds / raw_rate:.2f}")
    os.unlink(f"{directory}/raw.bin")
    for sub in ("each", "group"):
        shutil.rmtree(f"{directory}/{sub}", ignore_errors=True)


if __name__ == "__main__":
    main()
