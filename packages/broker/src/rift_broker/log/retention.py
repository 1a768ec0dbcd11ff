"""Retention: which of the oldest segments may go, by size, by time or below the start.

Pure decision over segment statistics; the partition log deletes. Like Kafka, a
segment is deleted only whole, only from the old end, and never the active (last)
segment. A segment goes if any of these holds, re-evaluated after each deletion:

- time: its largest batch timestamp is older than ``now_ms - retention_ms``;
- size: the log without it would still be at least ``retention_bytes``;
- start: the next segment starts at or below ``log_start_offset``.

And never past ``max_offset`` when one is given: a segment goes only if every
offset it holds is below it (its successor starts at or below ``max_offset``). A
replicated log passes its high watermark, so retention never deletes a record a
consumer could not yet read, nor one a new leader might still need to truncate
(see :mod:`rift_broker.replication._retention`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rift_broker.log.config import LogConfig

__all__ = ["SegmentStats", "deletable_segments"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SegmentStats:
    base_offset: int
    size: int
    max_timestamp: int


def deletable_segments(
    segments: Sequence[SegmentStats],
    *,
    config: LogConfig,
    now_ms: int,
    log_start_offset: int,
    max_offset: int | None = None,
) -> int:
    """How many segments, oldest first, retention deletes."""
    total = sum(segment.size for segment in segments)
    count = 0
    while count < len(segments) - 1:
        segment = segments[count]
        if max_offset is not None and segments[count + 1].base_offset > max_offset:
            break  # it holds offsets at or above the limit
        expired = config.retention_ms >= 0 and segment.max_timestamp < now_ms - config.retention_ms
        oversize = config.retention_bytes >= 0 and total - segment.size >= config.retention_bytes
        below_start = segments[count + 1].base_offset <= log_start_offset
        if not (expired or oversize or below_start):
            break
        total -= segment.size
        count += 1
    return count
