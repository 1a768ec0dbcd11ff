"""Group commit: when to start the next fsync (sans-IO core).

Theory of operation. Appends write unsynced and register as *pending*. At most one
fsync runs at a time; everything appended while it runs waits for the next one,
so under load one fsync covers many appends and the batch size is emergent. The
core only decides *when* the next fsync starts, given the time:

=========  =================================================================
policy     start an fsync when nothing is in flight and ...
=========  =================================================================
each       any append is pending (the driver also serializes appends, so
           every fsync covers exactly one append)
group      ``max_batch`` appends are pending, or the oldest pending append has
           waited ``max_wait_ms`` (0: at once)
interval   any append is pending and ``interval_ms`` passed since the last one
=========  =================================================================

A failed fsync stops the core for good. The asyncio driver lives in
``async_group_commit.py`` (re-exported here as ``AsyncGroupCommitter``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rift_broker.log.config import FlushPolicy, LogConfig

if TYPE_CHECKING:
    from rift_broker.log.async_group_commit import AsyncGroupCommitter

__all__ = ["GroupCommit", "Flush", "WaitUntil", "Idle", "Action", "AsyncGroupCommitter"]


@dataclass(frozen=True, slots=True)
class Flush:
    """Start an fsync now."""


@dataclass(frozen=True, slots=True)
class WaitUntil:
    """Nothing to do before ``deadline_ms`` unless more appends arrive."""

    deadline_ms: int


@dataclass(frozen=True, slots=True)
class Idle:
    """Nothing pending (or an fsync is in flight, or the core stopped)."""


Action = Flush | WaitUntil | Idle


class GroupCommit:
    def __init__(
        self,
        *,
        policy: FlushPolicy = "group",
        max_batch: int = 1024,
        max_wait_ms: int = 0,
        interval_ms: int = 1000,
    ):
        self.policy = policy
        self.max_batch = max_batch
        self.max_wait_ms = max_wait_ms
        self.interval_ms = interval_ms
        self.pending = 0
        self.in_flight = 0  # appends covered by the running fsync (0: none running)
        self.flushing = False
        self.stopped = False
        self.fsyncs = 0
        self._first_pending_ms = 0
        self._last_flush_ms = 0

    @classmethod
    def from_config(cls, config: LogConfig, *, now_ms: int = 0) -> GroupCommit:
        core = cls(
            policy=config.flush_policy,
            max_batch=config.group_commit_max_batch,
            max_wait_ms=config.group_commit_max_wait_ms,
            interval_ms=config.flush_interval_ms,
        )
        core._last_flush_ms = now_ms
        return core

    def note_append(self, now_ms: int) -> None:
        if self.pending == 0:
            self._first_pending_ms = now_ms
        self.pending += 1

    def next_action(self, now_ms: int) -> Action:
        if self.stopped or self.flushing or self.pending == 0:
            return Idle()
        if self.policy == "each":
            return Flush()
        if self.policy == "group":
            deadline = self._first_pending_ms + self.max_wait_ms
            if self.pending >= self.max_batch or now_ms >= deadline:
                return Flush()
            return WaitUntil(deadline)
        deadline = self._last_flush_ms + self.interval_ms
        return Flush() if now_ms >= deadline else WaitUntil(deadline)

    def flush_started(self, now_ms: int) -> int:
        """An fsync starts and covers every pending append; returns how many."""
        self.flushing = True
        self.in_flight, self.pending = self.pending, 0
        self._last_flush_ms = now_ms
        return self.in_flight

    def flush_finished(self) -> None:
        self.flushing = False
        self.in_flight = 0
        self.fsyncs += 1

    def flush_failed(self) -> None:
        self.flushing = False
        self.stopped = True


def __getattr__(name: str) -> Any:
    # The asyncio driver is importable from here without this module importing asyncio.
    if name == "AsyncGroupCommitter":
        from rift_broker.log.async_group_commit import AsyncGroupCommitter

        return AsyncGroupCommitter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
