"""Settings of one partition log, validated once at construction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["LogConfig", "FlushPolicy"]

FlushPolicy = Literal["group", "each", "interval"]
_FLUSH_POLICIES = ("group", "each", "interval")
_INT32_MAX = (1 << 31) - 1
# The smallest valid batch: its 61-byte header.
_MIN_BATCH = 61


@dataclass(frozen=True, slots=True, kw_only=True)
class LogConfig:
    """How a partition log rolls, indexes, retains and syncs.

    ``segment_bytes`` and ``max_batch_bytes`` stay below 2 GiB because index
    entries hold 32-bit positions. ``retention_bytes`` / ``retention_ms`` of -1 mean
    "keep forever". ``flush_policy``: ``"group"`` (concurrent appends share one fsync,
    started when ``group_commit_max_batch`` appends are pending or the oldest has
    waited ``group_commit_max_wait_ms``, and never while another is running),
    ``"each"`` (one fsync per append) or ``"interval"`` (appends return unsynced; an
    fsync at most every ``flush_interval_ms``).
    """

    segment_bytes: int = 1 << 30
    segment_ms: int = 7 * 24 * 3600 * 1000
    index_interval_bytes: int = 4096
    retention_bytes: int = -1
    retention_ms: int = 7 * 24 * 3600 * 1000
    max_batch_bytes: int = 1 << 20
    flush_policy: FlushPolicy = "group"
    flush_interval_ms: int = 1000
    group_commit_max_batch: int = 1024
    group_commit_max_wait_ms: int = 0

    def __post_init__(self) -> None:
        def check(ok: bool, message: str) -> None:
            if not ok:
                raise ValueError(f"invalid LogConfig: {message}")

        check(
            _MIN_BATCH <= self.segment_bytes <= _INT32_MAX,
            f"segment_bytes={self.segment_bytes} must be between {_MIN_BATCH} and {_INT32_MAX}",
        )
        check(self.segment_ms >= 1, f"segment_ms={self.segment_ms} must be >= 1")
        check(
            self.index_interval_bytes >= 0,
            f"index_interval_bytes={self.index_interval_bytes} must be >= 0",
        )
        check(
            self.retention_bytes >= -1,
            f"retention_bytes={self.retention_bytes} must be >= 0, or -1 for no size limit",
        )
        check(
            self.retention_ms >= -1,
            f"retention_ms={self.retention_ms} must be >= 0, or -1 for no time limit",
        )
        check(
            _MIN_BATCH <= self.max_batch_bytes <= _INT32_MAX,
            f"max_batch_bytes={self.max_batch_bytes} must be between {_MIN_BATCH} and {_INT32_MAX}",
        )
        check(
            self.flush_policy in _FLUSH_POLICIES,
            f"flush_policy={self.flush_policy!r} must be one of {', '.join(_FLUSH_POLICIES)}",
        )
        check(
            self.flush_interval_ms >= 0, f"flush_interval_ms={self.flush_interval_ms} must be >= 0"
        )
        check(
            self.group_commit_max_batch >= 1,
            f"group_commit_max_batch={self.group_commit_max_batch} must be >= 1",
        )
        check(
            self.group_commit_max_wait_ms >= 0,
            f"group_commit_max_wait_ms={self.group_commit_max_wait_ms} must be >= 0",
        )
