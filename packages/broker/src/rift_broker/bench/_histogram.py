"""Produce latencies in log-spaced buckets, so worker processes can merge them cheaply.

A bucket spans 1% of its value (``floor(ln(us) * SCALE)``), so a percentile read
back is at most 1% above the true one; a million samples cost a few hundred dict
entries to pickle through a pipe, where a sorted list would cost megabytes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = ["LatencyHistogram"]

_SCALE = 1.0 / math.log(1.01)


class LatencyHistogram:
    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.total = 0

    def add(self, seconds: float) -> None:
        bucket = int(math.log(max(seconds * 1e6, 1.0)) * _SCALE)
        self.counts[bucket] = self.counts.get(bucket, 0) + 1
        self.total += 1

    def add_all(self, seconds: Iterable[float]) -> None:
        """Add many samples (collect them in an ``array`` while timing, bucket them after)."""
        log = math.log
        counts = self.counts
        n = 0
        for value in seconds:
            bucket = int(log(max(value * 1e6, 1.0)) * _SCALE)
            counts[bucket] = counts.get(bucket, 0) + 1
            n += 1
        self.total += n

    def merge(self, other: LatencyHistogram) -> None:
        for bucket, count in other.counts.items():
            self.counts[bucket] = self.counts.get(bucket, 0) + count
        self.total += other.total

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0..100) in seconds (a bucket's upper edge); 0 if empty."""
        if not 0 <= q <= 100:
            raise ValueError(f"percentile must be within 0..100, got {q}")
        if self.total == 0:
            return 0.0
        rank = max(1, math.ceil(self.total * q / 100))
        seen = 0
        for bucket in sorted(self.counts):
            seen += self.counts[bucket]
            if seen >= rank:
                return math.exp((bucket + 1) / _SCALE) / 1e6
        raise AssertionError("unreachable: rank <= total")  # pragma: no cover
