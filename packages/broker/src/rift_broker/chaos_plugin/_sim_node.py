"""One simulated broker: a :class:`ClusterNode` driven by the simulation driver.

This is the same loop as the asyncio driver (see :mod:`rift_broker.cluster.node`),
with the simulator's context in place of sockets and clocks:

- inputs: ``start`` boots a fresh process on whatever the node's disk holds (Raft
  state through :class:`FileRaftStorage`, partition logs through
  :class:`PartitionLog`, producer state rebuilt from batch headers); a message is
  a peer message or a client call; the ``tick`` timer is armed at the node's next
  deadline after every event;
- persist before send: each ``Ready`` is persisted (fsynced) before ``advance``;
- an fsync of a partition log (``NeedFlush``) completes ``flush_delay_ms`` later on
  a timer, so a kill in between loses the unsynced appends, as on a real disk;
- with ``maintain_interval_ms``, a ``maintain`` timer runs the replica manager's log
  maintenance (roll segments, apply retention) that often, as the real driver does;
  both its clocks are simulated: the node's monotonic time for segment age, the
  node's (possibly jumped) wall clock for record timestamps. Topic configs given at
  creation (``segment.bytes``, ``retention.bytes``, ...) reach every replica's log.

The node's time is monotonic, like the real broker's timers: a clock fault that
jumps forward moves it forward, a jump back is not seen (the monotonic clock is
never set back). After each event the shared :class:`Invariants` look at the node.

Besides the partition ``leader`` and ``high-watermark`` facts, the node reports the
moments ``kill-at`` faults strike at: ``vote`` when it granted a Raft vote, and
``elected`` when it won a Raft election - both once the messages of that event
(the vote, the new leader's first appends) are on their way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rift_broker.chaos_plugin._sim_messages import (
    CreateTopicAnswer,
    CreateTopicCall,
    ProduceAnswer,
    ProduceCall,
    ReadAnswer,
    ReadCall,
)
from rift_broker.cluster.node import ClusterNode, CreateTopicDone, NodeConfig
from rift_broker.cluster.raft_store import FileRaftStorage
from rift_broker.controller import NO_LEADER, CreateTopicRequest
from rift_broker.log import LogConfig, PartitionLog
from rift_broker.log.errors import LogStoppedError
from rift_broker.producer_state import ProducerStateTable
from rift_broker.raft import VoteResponse
from rift_broker.records import iter_batches, iter_records
from rift_broker.replication.messages import NONE, NeedFlush, Observed, ProduceDone
from rift_broker.server.topics import replica_log_config
from rift_broker.storage import MemoryStorage

if TYPE_CHECKING:
    from rift_broker.chaos_plugin._sim_invariants import Invariants
    from rift_chaos.sim import NodeContext

READ_MAX_BYTES = 64 * 1024
# Index every batch: simulated logs are tiny, and reads then find offsets without a scan.
LOG_CONFIG = LogConfig(index_interval_bytes=0)


class BrokerSimNode:
    """A SimNode wrapping one broker process (one incarnation of node ``name``)."""

    def __init__(
        self,
        *,
        name: str,
        node_id: int,
        names: dict[int, str],
        disk: MemoryStorage,
        config: NodeConfig,
        invariants: Invariants,
        flush_delay_ms: int = 1,
        election_jitter_ms: int | None = None,
        maintain_interval_ms: int | None = None,
    ) -> None:
        self.name = name
        self.node_id = node_id
        self._names = names
        self.disk = disk
        self._config = config
        self._invariants = invariants
        self._flush_delay_ms = flush_delay_ms
        self._maintain_interval_ms = maintain_interval_ms
        low = config.raft.election_timeout_ms
        self._election_timeouts = (low, low + max(1, election_jitter_ms or low) - 1)
        self.node: ClusterNode | None = None
        self.store: FileRaftStorage | None = None
        self._mono = 0
        self._last_raw: int | None = None
        self._tick_at: int | None = None
        self._elected = -1  # the last Raft term this process won
        self._next_request = 0
        self._produces: dict[int, tuple[str, int]] = {}  # our request id -> (client, its id)
        self._topics: dict[int, tuple[str, int]] = {}

    # -- SimNode ------------------------------------------------------------------

    def start(self, ctx: NodeContext) -> None:
        now = self._now(ctx)
        self.store = FileRaftStorage(storage=self.disk, directory="/meta")
        rng = ctx.random
        low, high = self._election_timeouts
        self.node = ClusterNode(
            config=self._config,
            raft_state=self.store.load(),
            open_log=self._open_log,
            now_ms=now,
            next_timeout=lambda: rng.randint(low, high),
        )
        if self._maintain_interval_ms is not None:
            ctx.set_timer("maintain", self._maintain_interval_ms)
        self._settle(ctx, now)

    def receive(self, ctx: NodeContext, src: str, message: Any) -> None:
        node = self.node
        assert node is not None
        now = self._now(ctx)
        if isinstance(message, ProduceCall):
            self._next_request += 1
            self._produces[self._next_request] = (src, message.request_id)
            node.produce(
                request_id=self._next_request,
                topic=message.topic,
                partition=message.partition,
                batch=message.batch,
                acks=-1,
                now_ms=now,
            )
        elif isinstance(message, ReadCall):
            ctx.send(src, self._read(message))
        elif isinstance(message, CreateTopicCall):
            self._next_request += 1
            self._topics[self._next_request] = (src, message.request_id)
            request = CreateTopicRequest(
                topic=message.topic,
                partitions=message.partitions,
                replication_factor=3,
                configs=(
                    ("min.insync.replicas", str(message.min_insync_replicas)),
                    *message.configs,
                ),
            )
            node.create_topic(request_id=self._next_request, request=request, now_ms=now)
        else:
            node.receive(message, now)
        self._settle(ctx, now)

    def timer(self, ctx: NodeContext, name: str) -> None:
        node = self.node
        assert node is not None
        now = self._now(ctx)
        if name == "tick":
            self._tick_at = None
            node.tick(now)
        elif name == "maintain":
            assert self._maintain_interval_ms is not None
            # What changed shows in the replicas' logs (the invariants read them).
            node.maintain(now_ms=now, wall_ms=ctx.now_ms)
            ctx.set_timer("maintain", self._maintain_interval_ms)
        else:  # "flush <topic> <partition>"
            _, topic, partition = name.split(" ")
            log = node.replicas.log(topic, int(partition))
            if log is not None:
                try:
                    log.flush()
                except LogStoppedError:
                    node.on_flush_failed(topic=topic, partition=int(partition), now_ms=now)
                else:
                    node.on_flushed(topic=topic, partition=int(partition), now_ms=now)
        self._settle(ctx, now)

    # -- the driver loop ----------------------------------------------------------

    def _now(self, ctx: NodeContext) -> int:
        raw = ctx.now_ms
        if self._last_raw is None:
            self._mono = raw
        elif raw > self._last_raw:
            self._mono += raw - self._last_raw
        self._last_raw = raw
        return self._mono

    def _settle(self, ctx: NodeContext, now: int) -> None:
        node, store = self.node, self.store
        assert node is not None
        assert store is not None
        invariants = self._invariants
        votes: list[VoteResponse] = []
        while node.has_ready():
            ready = node.ready()
            store.persist(ready)
            if ready.committed:
                invariants.on_committed(self.name, ready.committed, term=node.raft.term)
            votes.extend(m for m in ready.messages if isinstance(m, VoteResponse) and m.granted)
            node.advance(ready, now)
        names = self._names
        for dst, message in node.take_outbox():
            ctx.send(names[dst], message)
        # Moments a kill-at fault may strike at, once the messages they concern left.
        raft = node.raft
        for vote in votes:
            ctx.observe("vote", {"term": vote.term, "candidate": names[vote.dst]})
        if raft.is_leader and raft.term != self._elected:
            self._elected = raft.term
            ctx.observe("elected", {"term": raft.term})
        # Handling effects only sends and arms timers: it gives the node no new input.
        for effect in node.take_effects():
            if isinstance(effect, NeedFlush):
                ctx.set_timer(f"flush {effect.topic} {effect.partition}", self._flush_delay_ms)
            elif isinstance(effect, ProduceDone):
                waiting = self._produces.pop(effect.request_id, None)
                if waiting is not None:
                    answer = ProduceAnswer(
                        request_id=waiting[1],
                        error=effect.error,
                        base_offset=effect.base_offset,
                        leader=self._leader(effect.topic, effect.partition),
                    )
                    ctx.send(waiting[0], answer)
            elif isinstance(effect, CreateTopicDone):
                asked = self._topics.pop(effect.request_id, None)
                if asked is not None:
                    reply = CreateTopicAnswer(request_id=asked[1], error=effect.reply.error)
                    ctx.send(asked[0], reply)
            elif isinstance(effect, Observed):
                self._observe(ctx, effect)
        # Never push an armed tick later: some deadlines are "now + period" (the replica
        # manager's), and a busy node would otherwise re-arm them away forever.
        due = now + self._tick_delay(node, now)
        if self._tick_at is None or self._tick_at <= now or due < self._tick_at:
            ctx.set_timer("tick", due - now)
            self._tick_at = due
        invariants.after_step(self)

    @staticmethod
    def _tick_delay(node: ClusterNode, now: int) -> int:
        deadline = node.next_deadline(now)
        if deadline > now:
            return deadline - now
        # ClusterNode.next_deadline stays in the past while a registration or broker
        # heartbeat call is pending (its due time only moves when a call is sent), which
        # would tick every millisecond until the call ends; leave that part out.
        parts = [node.raft.next_deadline(), node.replicas.next_deadline(now_ms=now)]
        controller = node.controller.next_deadline()
        if controller is not None:
            parts.append(controller)
        return max(1, min(parts) - now)

    def _observe(self, ctx: NodeContext, effect: Observed) -> None:
        value: dict[str, Any] = {"topic": effect.topic, "partition": effect.partition}
        if effect.kind == "leader":
            value["epoch"] = effect.value["epoch"]
            value["node"] = self.name
        else:  # with the leader's epoch: a deposed leader's stale view is no regression
            value["offset"] = effect.value["offset"]
            value["epoch"] = effect.value["epoch"]
        self._invariants.on_observed(self.name, effect)
        ctx.observe(effect.kind, value)

    # -- helpers ------------------------------------------------------------------

    def _open_log(
        self, topic: str, partition: int, configs: tuple[tuple[str, str], ...] = ()
    ) -> tuple[PartitionLog, ProducerStateTable]:
        log = PartitionLog.open(
            f"/data/{topic}-{partition}",
            config=replica_log_config(LOG_CONFIG, topic, dict(configs)),
            storage=self.disk,
            now_ms=self._mono,
        )
        producers = ProducerStateTable()
        for _, h in log.batches_headers():
            producers.record(
                producer_id=h.producer_id,
                epoch=h.producer_epoch,
                base_sequence=h.base_sequence,
                last_offset_delta=h.last_offset_delta,
                base_offset=h.base_offset,
                last_offset=h.last_offset,
            )
        return log, producers

    def _leader(self, topic: str, partition: int) -> str | None:
        assert self.node is not None
        info = self.node.image.partitions.get((topic, partition))
        if info is None or info.leader == NO_LEADER:
            return None
        return self._names.get(info.leader)

    def _read(self, call: ReadCall) -> ReadAnswer:
        assert self.node is not None
        replicas = self.node.replicas
        result = replicas.read(
            topic=call.topic, partition=call.partition, offset=call.offset, max_bytes=READ_MAX_BYTES
        )
        error = result.error
        if error == NONE and not result.records:
            # Nothing more to read: readers take this for the end of the log, which
            # is only known when the broker's ListOffsets "latest" would give one.
            end_error, _ = replicas.latest_offset(call.topic, call.partition)
            error = end_error
        return ReadAnswer(
            request_id=call.request_id,
            error=error,
            records=tuple(decode(result.records)) if result.records else (),
            high_watermark=result.high_watermark,
            leader=self._leader(call.topic, call.partition),
            log_start_offset=result.log_start_offset,
        )


def decode(data: bytes) -> list[tuple[int, int]]:
    """(offset, value) of every record in ``data``; simulated clients write ints."""
    out: list[tuple[int, int]] = []
    for position, _ in iter_batches(data, validate=False):
        for record in iter_records(data, position):
            assert record.value is not None
            out.append((record.offset, int(record.value)))
    return out
