"""The asyncio driver of group commit: appends return once an fsync covers them.

``append`` writes through to the log at once (so offsets are assigned in call
order) and parks the caller on a future keyed by the batch's last offset. One
background task asks the :class:`~rift_broker.log.group_commit.GroupCommit` core
when to flush, runs ``FlushTicket.run`` in a worker thread (``asyncio.to_thread``
by default) so appends keep arriving meanwhile, then releases every waiter below
the new ``flushed_offset``. A failed fsync fails every waiter and every later
append with :class:`LogStoppedError`; it is never retried.

Policy ``each`` serializes append+fsync under a lock; ``interval`` returns from
``append`` before the fsync (acknowledgement does not wait for the disk).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

from rift_broker.log.errors import LogStoppedError
from rift_broker.log.group_commit import Flush, GroupCommit, WaitUntil
from rift_broker.log.partition import AppendInfo, PartitionLog

__all__ = ["AsyncGroupCommitter", "RunSync"]

RunSync = Callable[[Callable[[], None]], Awaitable[None]]


async def _to_thread(function: Callable[[], None]) -> None:
    await asyncio.to_thread(function)


class AsyncGroupCommitter:
    """Durable appends for one :class:`PartitionLog` under its config's flush policy.

    ``clock`` returns milliseconds (default: the event loop's monotonic clock);
    ``run_sync`` runs a blocking callable (default: in a worker thread). Tests
    inject both to stay deterministic.
    """

    def __init__(
        self,
        log: PartitionLog,
        *,
        clock: Callable[[], int] | None = None,
        run_sync: RunSync | None = None,
    ):
        self._log = log
        self._clock = clock or (lambda: int(asyncio.get_running_loop().time() * 1000))
        self._run_sync = run_sync or _to_thread
        self.core = GroupCommit.from_config(log.config)
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._error: LogStoppedError | None = None
        self._each_lock = asyncio.Lock()

    @property
    def log(self) -> PartitionLog:
        return self._log

    async def append(self, batch: bytes | bytearray, *, leader_epoch: int) -> AppendInfo:
        """Append one batch; return once it is durable (or written, for ``interval``)."""
        self._raise_if_failed()
        if self.core.policy == "each":
            async with self._each_lock:
                self._raise_if_failed()
                info = self._log.append(batch, leader_epoch=leader_epoch, now_ms=self._clock())
                self.core.note_append(self._clock())
                await self._flush_once()
                return info
        info = self._log.append(batch, leader_epoch=leader_epoch, now_ms=self._clock())
        self.core.note_append(self._clock())
        if self.core.policy == "interval":
            self._kick()
            return info
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((info.last_offset, waiter))
        self._kick()
        await waiter
        return info

    async def drain(self) -> None:
        """Wait until every append so far is durable (or the log failed)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)
        if self.core.pending and self._error is None:
            await self._flush_once()
        self._raise_if_failed()

    async def close(self) -> None:
        """Drain, then close the log."""
        try:
            await self.drain()
        finally:
            self._log.close()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise LogStoppedError(str(self._error)) from self._error

    def _kick(self) -> None:
        self._wakeup.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while self._error is None:
            now = self._clock()
            action = self.core.next_action(now)
            if isinstance(action, Flush):
                await self._flush_once()
            elif isinstance(action, WaitUntil):
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(
                        self._wakeup.wait(), timeout=max(action.deadline_ms - now, 0) / 1000
                    )
                except TimeoutError:
                    pass
            else:
                return

    async def _flush_once(self) -> None:
        """One fsync covering every append so far; raises only under policy ``each``."""
        try:
            ticket = self._log.begin_flush()
        except LogStoppedError as error:
            self.core.flush_failed()
            self._fail(error)
            if self.core.policy == "each":
                raise
            return
        self.core.flush_started(self._clock())
        if ticket.fsyncs_needed:
            await self._run_sync(ticket.run)
        try:
            self._log.complete_flush(ticket)
        except LogStoppedError as error:
            self.core.flush_failed()
            self._fail(error)
            if self.core.policy == "each":
                raise
            return
        self.core.flush_finished()
        flushed = self._log.flushed_offset
        while self._waiters and self._waiters[0][0] < flushed:
            _, waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def _fail(self, error: LogStoppedError) -> None:
        self._error = error
        while self._waiters:
            _, waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(LogStoppedError(str(error)))
