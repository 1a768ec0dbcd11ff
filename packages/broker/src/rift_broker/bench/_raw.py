"""The disk's own speed: a plain ``write`` + ``fsync`` loop, the baseline for the broker.

:func:`rift_broker.bench.log_bench.bench_raw` is the same loop with a fixed 16 KB
block; here the block size is a parameter, so the baseline writes what one of the
broker's group commits wrote on average (what the disk could do with the same
bytes per fsync).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from rift_broker.bench._histogram import LatencyHistogram

__all__ = ["RawResult", "raw_write_fsync"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RawResult:
    block_bytes: int
    fsyncs: int
    seconds: float
    latency: LatencyHistogram

    @property
    def fsyncs_per_s(self) -> float:
        return self.fsyncs / self.seconds if self.seconds > 0 else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.fsyncs_per_s * self.block_bytes / 1e6


def raw_write_fsync(directory: str, *, block_bytes: int, seconds: float) -> RawResult:
    """Append ``block_bytes`` and fsync, in a loop, for ``seconds`` (one scratch file)."""
    block = os.urandom(max(block_bytes, 1))
    path = os.path.join(directory, "raw-write-fsync.bin")
    latency = LatencyHistogram()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        start = time.perf_counter()
        deadline = start + seconds
        fsyncs = 0
        while True:
            t0 = time.perf_counter()
            if t0 >= deadline:
                break
            os.write(fd, block)
            os.fsync(fd)
            latency.add(time.perf_counter() - t0)
            fsyncs += 1
        elapsed = time.perf_counter() - start
    finally:
        os.close(fd)
        os.unlink(path)
    return RawResult(block_bytes=len(block), fsyncs=fsyncs, seconds=elapsed, latency=latency)
