"""The asyncio driver of the Raft core: real clock, real disk, real sockets.

One task owns the :class:`~rift_broker.raft.RaftNode`; nothing else touches it.
Incoming messages and proposals are queued to that task. Each turn it feeds the
node what arrived, fires due timers, then drains every ``Ready`` in the order the
core requires: **persist** (in a worker thread, since it fsyncs), **send**,
**apply** to the state machine, and snapshot when the core advises it.

A proposal resolves when its entry is applied. If leadership was lost and another
entry was committed at that index, it resolves as :class:`NotLeader` — the
command did not happen. If the node stops first the caller gets ``None`` — the
command may or may not have happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from typing import Any, Protocol

from rift_broker.raft import NOOP, Entry, Message, NotLeader, RaftConfig, RaftNode, RaftStorage


class StateMachine(Protocol):
    """What Raft replicates into. ``apply`` is called once per committed entry, in order."""

    def apply(self, entry: Entry) -> None: ...

    def snapshot(self) -> bytes: ...

    def restore(self, data: bytes) -> None: ...


class Sender(Protocol):
    def send(self, dst: int, message: Any) -> None: ...


def monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class RaftDriver:
    def __init__(
        self,
        *,
        node_id: int,
        voters: tuple[int, ...],
        storage: RaftStorage,
        sender: Sender,
        state_machine: StateMachine,
        config: RaftConfig | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], int] = monotonic_ms,
    ) -> None:
        self.config = config or RaftConfig()
        self._rng = rng or random.Random()
        self._clock = clock
        self._storage = storage
        self._sender = sender
        self._sm = state_machine
        state = storage.load()
        if state.snapshot is not None:
            state_machine.restore(state.snapshot.data)
        timeout = self.config.election_timeout_ms
        self.node = RaftNode(
            node_id,
            voters,
            now_ms=clock(),
            next_timeout=lambda: self._rng.randint(timeout, 2 * timeout),
            state=state,
            config=self.config,
        )
        self._inbox: asyncio.Queue[Message | None] = asyncio.Queue()
        self._waiters: dict[int, tuple[int, asyncio.Future[int | NotLeader | None]]] = {}
        self._task: asyncio.Task[None] | None = None
        self.on_role_change: Callable[[], None] | None = None

    # -- inputs from other tasks ------------------------------------------------

    def deliver(self, message: Message) -> None:
        """A message for this node arrived (called by the transport)."""
        self._inbox.put_nowait(message)

    async def propose(self, command: bytes) -> int | NotLeader | None:
        """Replicate ``command``; resolves to its index once applied (see module doc)."""
        if not command:
            raise ValueError("an empty command is reserved for Raft's no-op")
        result = self.node.propose(command)
        if isinstance(result, NotLeader):
            return result
        future: asyncio.Future[int | NotLeader | None] = asyncio.get_running_loop().create_future()
        self._waiters[result] = (self.node.term, future)
        self._inbox.put_nowait(None)  # wake the loop to drain the Ready
        return await future

    @property
    def leader_id(self) -> int | None:
        return self.node.leader_id

    @property
    def is_leader(self) -> bool:
        return self.node.is_leader

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"raft-{self.node.node_id}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for _, future in self._waiters.values():
            if not future.done():
                future.set_result(None)
        self._waiters.clear()

    async def _run(self) -> None:
        while True:
            now = self._clock()
            wait_s = max(0, self.node.next_deadline() - now) / 1000
            with contextlib.suppress(TimeoutError):
                first = await asyncio.wait_for(self._inbox.get(), timeout=wait_s)
                self._feed(first)
                while not self._inbox.empty():
                    self._feed(self._inbox.get_nowait())
            self.node.tick(self._clock())
            await self._drain()

    def _feed(self, message: Message | None) -> None:
        if message is not None:
            self.node.receive(message, self._clock())

    async def _drain(self) -> None:
        leader_before = (self.node.role, self.node.leader_id, self.node.term)
        while self.node.has_ready():
            ready = self.node.ready()
            if ready.snapshot is not None or ready.entries or ready.hard_state is not None:
                await asyncio.to_thread(self._storage.persist, ready)
            for message in ready.messages:
                self._sender.send(message.dst, message)
            if ready.snapshot is not None:
                self._sm.restore(ready.snapshot.data)
            for entry in ready.committed:
                if entry.command != NOOP:
                    self._sm.apply(entry)
                self._resolve(entry)
            if ready.snapshot_due is not None:
                snapshot = self.node.compact(ready.snapshot_due, self._sm.snapshot())
                await asyncio.to_thread(self._storage.save_snapshot, snapshot)
        changed = leader_before != (self.node.role, self.node.leader_id, self.node.term)
        if changed and self.on_role_change is not None:
            self.on_role_change()

    def _resolve(self, entry: Entry) -> None:
        waiter = self._waiters.pop(entry.index, None)
        if waiter is None:
            return
        term, future = waiter
        if not future.done():
            future.set_result(
                entry.index
                if entry.term == term
                else NotLeader(leader_id=self.node.leader_id, term=self.node.term)
            )
