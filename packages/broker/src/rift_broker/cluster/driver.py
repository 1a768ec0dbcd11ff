"""The asyncio driver of a :class:`ClusterNode`: real clock, real files, real sockets.

One task owns the node. Everything else — the peer transport, Kafka request
handlers, finished fsyncs — talks to it through a queue of thunks that the task
runs in order; the node itself is never touched from two places at once. Each turn
the task: runs what was queued, ticks the node if a deadline passed, persists every
Raft ``Ready`` (in a worker thread: it fsyncs) before ``advance`` lets its messages
out, then sends the outbox and carries out the effects — log fsyncs in worker
threads (their completion comes back through the queue), produce and topic
answers to the waiting handlers, observations to the log. Log maintenance
(:meth:`ClusterDriver.maintain`: segment rolling by age and retention) runs as one
more thunk on the same task, every maintenance interval.

Handlers wait on futures: a produce resolves when the replica manager answers it
(acks=1 after the leader's fsync, acks=all once the high watermark covers it);
fetches wait on :meth:`changed`, an event set whenever any high watermark moves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from rift_broker.cluster.messages import cluster_codec
from rift_broker.cluster.node import ClusterNode, CreateTopicDone, NodeConfig
from rift_broker.cluster.raft_store import FileRaftStorage
from rift_broker.cluster.transport import PeerTransport
from rift_broker.controller import CreateTopicReply, CreateTopicRequest
from rift_broker.log import LogConfig, LogError, PartitionLog
from rift_broker.producer_state import ProducerStateTable
from rift_broker.replication.messages import Maintained, NeedFlush, Observed, ProduceDone
from rift_broker.server.context import wall_clock_ms
from rift_broker.server.topics import replica_log_config
from rift_broker.storage import OsStorage

_log = logging.getLogger("rift_broker.cluster")


def monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class ClusterDriver:
    def __init__(
        self,
        *,
        config: NodeConfig,
        data_dir: str,
        peers: dict[int, tuple[str, int]],
        log_config: LogConfig,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self._data_dir = data_dir
        self._peers = peers
        self._log_config = log_config
        self._rng = rng or random.Random()
        self._storage = OsStorage()
        self._store = FileRaftStorage(
            storage=self._storage, directory=f"{data_dir}/__cluster_metadata"
        )
        self._queue: asyncio.Queue[Callable[[], None]] = asyncio.Queue()
        self._produce: dict[int, asyncio.Future[ProduceDone]] = {}
        self._create: dict[int, asyncio.Future[CreateTopicReply]] = {}
        self._next_request = 0
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._flushes: set[asyncio.Task[None]] = set()
        self.transport = PeerTransport(
            node_id=config.node_id, peers=peers, codec=cluster_codec(), on_message=self._on_peer
        )
        timeout = config.raft.election_timeout_ms
        self.node = ClusterNode(
            config=config,
            raft_state=self._store.load(),
            open_log=self._open_log,
            now_ms=monotonic_ms(),
            next_timeout=lambda: self._rng.randint(timeout, 2 * timeout),
        )
        self.fatal: str | None = None

    # -- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        host, port = self._peers[self.config.node_id]
        await self.transport.start(host=host, port=port)
        self._task = asyncio.create_task(self._run(), name="cluster-node")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for task in list(self._flushes):
            with contextlib.suppress(Exception):
                await task
        await self.transport.close()
        for key in self.node.replicas.partitions():
            log = self.node.replicas.log(*key)
            if log is not None:
                with contextlib.suppress(LogError):
                    log.flush(final=True)
                log.close()
        self._store.close()
        pending: list[asyncio.Future[Any]] = [*self._produce.values(), *self._create.values()]
        for future in pending:
            if not future.done():
                future.cancel()

    # -- what handlers call -------------------------------------------------------

    def changed(self) -> asyncio.Event:
        """Set (and replaced) whenever a high watermark or the metadata moves."""
        return self._changed

    def produce(
        self, *, topic: str, partition: int, batch: bytes, acks: int
    ) -> asyncio.Future[ProduceDone]:
        self._next_request += 1
        rid = self._next_request
        future: asyncio.Future[ProduceDone] = asyncio.get_running_loop().create_future()
        if acks != 0:
            self._produce[rid] = future
        else:
            future.set_result(
                ProduceDone(request_id=rid, topic=topic, partition=partition, error=0)
            )
        self._submit(
            lambda: self.node.produce(
                request_id=rid,
                topic=topic,
                partition=partition,
                batch=batch,
                acks=acks,
                now_ms=monotonic_ms(),
            )
        )
        return future

    def maintain(self) -> asyncio.Future[list[Maintained]]:
        """Roll aged segments and apply retention on every replica, on the node's task."""
        future: asyncio.Future[list[Maintained]] = asyncio.get_running_loop().create_future()

        def run() -> None:
            if future.done():
                return
            try:
                done = self.node.maintain(now_ms=monotonic_ms(), wall_ms=wall_clock_ms())
            except Exception as e:  # handed to the caller, who logs it
                future.set_exception(e)
            else:
                future.set_result(done)

        self._submit(run)
        return future

    def create_topic(self, request: CreateTopicRequest) -> asyncio.Future[CreateTopicReply]:
        self._next_request += 1
        rid = self._next_request
        future: asyncio.Future[CreateTopicReply] = asyncio.get_running_loop().create_future()
        self._create[rid] = future
        self._submit(
            lambda: self.node.create_topic(request_id=rid, request=request, now_ms=monotonic_ms())
        )
        return future

    # -- the node's task ------------------------------------------------------------

    def _submit(self, thunk: Callable[[], None]) -> None:
        self._queue.put_nowait(thunk)

    def _on_peer(self, message: Any) -> None:
        self._submit(lambda: self.node.receive(message, monotonic_ms()))

    def _open_log(
        self, topic: str, partition: int, configs: tuple[tuple[str, str], ...]
    ) -> tuple[PartitionLog, ProducerStateTable]:
        # The log is given the monotonic clock, like every append the node makes:
        # a segment's age is measured against the time its first batch arrived.
        log = PartitionLog.open(
            f"{self._data_dir}/{topic}-{partition}",
            config=replica_log_config(self._log_config, topic, dict(configs)),
            storage=self._storage,
            now_ms=monotonic_ms(),
        )
        producers = ProducerStateTable.from_headers(h for _, h in log.batches_headers())
        return log, producers

    async def _run(self) -> None:
        try:
            await self._loop()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug in a core: stop serving rather than serve wrong
            self.fatal = f"cluster node failed: {type(e).__name__}: {e}"
            _log.critical(self.fatal, exc_info=True)
            raise

    async def _loop(self) -> None:
        while True:
            now = monotonic_ms()
            wait_s = max(0, self.node.next_deadline(now) - now) / 1000
            if self._queue.empty() and wait_s > 0:
                with contextlib.suppress(TimeoutError):
                    thunk = await asyncio.wait_for(self._queue.get(), timeout=wait_s)
                    thunk()
            # Whatever else arrived runs now, before timers: a due deadline must never
            # starve the inbox (replies it waits for may be sitting there).
            while not self._queue.empty():
                self._queue.get_nowait()()
            now = monotonic_ms()
            if self.node.next_deadline(now) <= now:
                self.node.tick(now)
            await self._settle()
            await asyncio.sleep(0)  # let handlers and the transport run between turns

    async def _settle(self) -> None:
        while True:
            moved = False
            while self.node.has_ready():
                ready = self.node.ready()
                if ready.snapshot is not None or ready.entries or ready.hard_state is not None:
                    await asyncio.to_thread(self._store.persist, ready)
                self.node.advance(ready, monotonic_ms())
                moved = moved or bool(ready.committed)
                if ready.snapshot_due is not None and self.node.raft.snapshot is not None:
                    await asyncio.to_thread(self._store.save_snapshot, self.node.raft.snapshot)
            for dst, message in self.node.take_outbox():
                self.transport.send(dst, message)
            effects = self.node.take_effects()
            for effect in effects:
                moved = self._carry_out(effect) or moved
            if moved:
                self._changed.set()
                self._changed = asyncio.Event()
            if not effects and not self.node.has_ready():
                return

    def _carry_out(self, effect: Any) -> bool:
        if isinstance(effect, NeedFlush):
            task = asyncio.create_task(self._flush(effect.topic, effect.partition))
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)
        elif isinstance(effect, ProduceDone):
            future = self._produce.pop(effect.request_id, None)
            if future is not None and not future.done():
                future.set_result(effect)
        elif isinstance(effect, CreateTopicDone):
            created = self._create.pop(effect.request_id, None)
            if created is not None and not created.done():
                created.set_result(effect.reply)
        elif isinstance(effect, Observed):
            # The monotonic clock, not the wall clock: a clock fault moves the wall
            # clock of one node, and these facts are merged across nodes by time.
            fact = {
                "kind": effect.kind,
                "topic": effect.topic,
                "partition": effect.partition,
                **effect.value,
                "monotonic_ns": time.monotonic_ns(),
            }
            _log.info("observe %s", json.dumps(fact))
            return True
        return False

    def dump(self) -> None:
        """Log the node's replicas and Raft role (``kill -USR1``)."""
        raft = self.node.raft
        _log.warning(
            "state: raft %s term %d leader %s commit %d; broker epoch %s; replicas %s",
            raft.role.value,
            raft.term,
            raft.leader_id,
            raft.commit_index,
            self.node.broker_epoch,
            json.dumps(self.node.replicas.describe()),
        )

    async def _flush(self, topic: str, partition: int) -> None:
        log = self.node.replicas.log(topic, partition)
        if log is None:
            return
        try:
            ticket = log.begin_flush()
            if ticket.fsyncs_needed:
                await asyncio.to_thread(ticket.run)
            log.complete_flush(ticket)
        except Exception as e:  # LogError, or a bug: either way nothing more is durable
            self.fatal = f"fsync of {topic}-{partition} failed: {e}"
            _log.critical("%s; this broker stops", self.fatal)
            self._submit(
                lambda: self.node.on_flush_failed(
                    topic=topic, partition=partition, now_ms=monotonic_ms()
                )
            )
            return
        self._submit(
            lambda: self.node.on_flushed(topic=topic, partition=partition, now_ms=monotonic_ms())
        )
