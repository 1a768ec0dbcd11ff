"""Group commit for one partition: many waiting appends, one fsync.

Appends write to the log unsynced, tell the flusher (:meth:`Flusher.note_append`),
and wait (:meth:`Flusher.wait_flushed`) until the flushed offset passes their end.
*When* to start an fsync is decided by the log's sans-IO
:class:`~rift_broker.log.group_commit.GroupCommit` core (at most one in flight;
start when ``group_commit_max_batch`` appends are pending or the oldest has waited
``group_commit_max_wait_ms``); this driver only does it: ``begin_flush`` on the
loop, the ticket's fsyncs in a worker thread (the log allows ``FlushTicket.run``
beside appends), ``complete_flush`` back on the loop. Appends that arrive during
an fsync are covered by the next one, so the size of a group is emergent.

If a flush fails, the log stops, and every waiter, now and later, gets the error:
fsync is never retried (the kernel may already have dropped the dirty pages).

Why not :class:`~rift_broker.log.AsyncGroupCommitter`: its ``append`` returns the
offsets only after the fsync, but the producer state must record a batch the moment
it is appended, before the next pipelined batch of the same producer is checked.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable

from rift_broker.log import PartitionLog
from rift_broker.log.group_commit import Flush, GroupCommit, WaitUntil

__all__ = ["Flusher"]


def _loop_ms() -> int:
    return int(asyncio.get_running_loop().time() * 1000)


class Flusher:
    __slots__ = (
        "_core",
        "_counter",
        "_error",
        "_log",
        "_on_failed",
        "_on_flushed",
        "_task",
        "_waiters",
        "_wakeup",
    )

    def __init__(
        self,
        log: PartitionLog,
        *,
        on_flushed: Callable[[], None],
        on_failed: Callable[[BaseException], None] = lambda error: None,
    ) -> None:
        self._log = log
        self._on_flushed = on_flushed
        self._on_failed = on_failed
        self._core = GroupCommit.from_config(log.config)
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._counter = itertools.count()
        self._task: asyncio.Task[None] | None = None
        self._wakeup: asyncio.Event | None = None
        self._error: BaseException | None = None

    @property
    def fsyncs(self) -> int:
        return self._core.fsyncs

    @property
    def busy(self) -> bool:
        """A flush is in flight (truncation and retention must wait)."""
        return self._core.flushing

    def note_append(self) -> None:
        self._core.note_append(_loop_ms())
        if self._wakeup is not None:
            self._wakeup.set()

    async def wait_flushed(self, end_offset: int) -> None:
        if self._error is not None:
            raise self._error
        if self._log.flushed_offset >= end_offset:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (end_offset, next(self._counter), future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="rift-flusher")
        elif self._wakeup is not None:
            self._wakeup.set()
        await asyncio.shield(future)

    async def _run(self) -> None:
        self._wakeup = asyncio.Event()
        while self._waiters and self._error is None:
            now = _loop_ms()
            action = self._core.next_action(now)
            if isinstance(action, WaitUntil):
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(
                        self._wakeup.wait(), max(action.deadline_ms - now, 0) / 1000
                    )
                except TimeoutError:
                    pass
                continue
            if not isinstance(action, Flush) and self._log.flushed_offset >= self._waiters[0][0]:
                self._release()  # pragma: no cover - only if a waiter's append was not noted
                continue
            await self._flush_once()

    async def _flush_once(self) -> None:
        self._core.flush_started(_loop_ms())
        try:
            ticket = self._log.begin_flush()
            if ticket.fsyncs_needed:
                await asyncio.to_thread(ticket.run)
            self._log.complete_flush(ticket)
        except Exception as e:
            self._core.flush_failed()
            self._error = e
            while self._waiters:
                _, _, future = heapq.heappop(self._waiters)
                if not future.done():
                    future.set_exception(e)
            self._on_failed(e)
            return
        self._core.flush_finished()
        self._release()

    def _release(self) -> None:
        flushed = self._log.flushed_offset
        while self._waiters and self._waiters[0][0] <= flushed:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)
        self._on_flushed()

    async def close(self) -> None:
        """Finish the running flush (waiters already queued are served first)."""
        if self._task is not None:
            await asyncio.shield(self._task)
