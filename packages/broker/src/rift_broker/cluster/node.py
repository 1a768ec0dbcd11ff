"""One broker of a cluster as a sans-IO core: a Raft voter, a controller, its replicas.

Theory of operation
-------------------
Every node of a small cluster plays both roles (DESIGN.md): it is a voter of the
Raft metadata quorum, and a broker holding partition replicas. This object joins
the cores — :class:`~rift_broker.raft.RaftNode`,
:class:`~rift_broker.controller.Controller` (with the metadata image every broker
follows) and :class:`~rift_broker.replication.ReplicaManager` — and is driven
exactly like them: inputs with the time, outputs collected for the driver.

The driver's loop, the same for the asyncio server and the simulator::

    node.tick(now) / node.receive(message, now) / node.produce(...) / ...
    while node.has_ready():
        ready = node.ready()
        persist ready (fsync)                      # Raft's rule: before any send
        node.advance(ready, now)                   # sends, applies, reconciles
    for dst, message in node.take_outbox(): send it
    for effect in node.take_effects(): flush logs, answer clients, record facts
    every maintenance interval: node.maintain(now, wall clock)   # roll, retention

Metadata flows one way: committed Raft entries are applied to the controller's
image, and every partition whose committed state changed is handed to the replica
manager (:meth:`_reconcile`), which becomes leader, follower or idle for it. The
broker side registers with the active controller (the Raft leader) and heartbeats
to it; a broker whose heartbeats lapse is fenced and its partitions get new
leaders. A replica leader's ISR changes go to the controller as AlterPartition
calls stamped with its leader and partition epochs; a stale one is refused.

Controller replies that depend on records are sent only once those records are
applied in the term they were proposed in; if leadership moves first, the reply is
dropped and the caller's timeout makes it retry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rift_broker.cluster.messages import (
    ControllerAnswer,
    ControllerCall,
    ControllerReply,
    ControllerRequest,
)
from rift_broker.controller import (
    NO_LEADER,
    AlterPartitionReply,
    AlterPartitionRequest,
    Controller,
    ControllerConfig,
    CreateTopicReply,
    CreateTopicRequest,
    Decision,
    ErrorCode,
    HeartbeatReply,
    HeartbeatRequest,
    MetadataImage,
    PartitionInfo,
    RegisterReply,
    RegisterRequest,
    encode_records,
)
from rift_broker.raft import (
    AppendEntries,
    AppendEntriesResponse,
    InstallSnapshot,
    InstallSnapshotResponse,
    NotLeader,
    PersistentState,
    PreVoteRequest,
    PreVoteResponse,
    RaftConfig,
    RaftNode,
    Ready,
    VoteRequest,
    VoteResponse,
)
from rift_broker.replication import (
    Maintained,
    PartitionAssignment,
    ReplicaManager,
    ReplicationConfig,
)
from rift_broker.replication._state import OpenLog
from rift_broker.replication.messages import (
    Effect,
    EpochAnswer,
    EpochQuery,
    ProposeIsr,
    ReplicaFetchRequest,
    ReplicaFetchResponse,
    SendToPeer,
)

RAFT_MESSAGES = (
    AppendEntries,
    AppendEntriesResponse,
    InstallSnapshot,
    InstallSnapshotResponse,
    PreVoteRequest,
    PreVoteResponse,
    VoteRequest,
    VoteResponse,
)
PEER_MESSAGES = (ReplicaFetchRequest, ReplicaFetchResponse, EpochQuery, EpochAnswer)


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeConfig:
    node_id: int
    voters: tuple[int, ...]
    host: str
    port: int
    incarnation: str
    raft: RaftConfig = field(default_factory=RaftConfig)
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    replication: ReplicationConfig = field(default_factory=ReplicationConfig)
    heartbeat_interval_ms: int = 500
    call_timeout_ms: int = 3_000


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateTopicDone:
    """The controller's answer to a client's topic creation (``request_id``)."""

    request_id: int
    reply: CreateTopicReply


NodeEffect = Effect | CreateTopicDone


@dataclass(slots=True, kw_only=True)
class _Call:
    request: ControllerRequest
    deadline: int
    controller: int  # the node it was sent to
    request_id: int | None = None  # for a client's CreateTopics


class ClusterNode:
    def __init__(
        self,
        *,
        config: NodeConfig,
        raft_state: PersistentState,
        open_log: OpenLog,
        now_ms: int,
        next_timeout: Callable[[], int],
    ) -> None:
        self.config = config
        self.node_id = config.node_id
        self.raft = RaftNode(
            config.node_id,
            config.voters,
            now_ms=now_ms,
            next_timeout=next_timeout,
            state=raft_state,
            config=config.raft,
        )
        self.controller = Controller(config.node_id, config=config.controller)
        if raft_state.snapshot is not None:
            self.controller.restore(raft_state.snapshot.data)
        self.replicas = ReplicaManager(
            node_id=config.node_id, open_log=open_log, config=config.replication
        )
        self.broker_epoch: int | None = None
        self._outbox: list[tuple[int, Any]] = []
        self._effects: list[NodeEffect] = []
        self._calls: dict[int, _Call] = {}
        self._next_call = 0
        self._register_due = now_ms
        self._heartbeat_due = now_ms
        self._replies: list[tuple[int, int, ControllerReply]] = []  # (index, term, reply)
        self._known: dict[tuple[str, int], PartitionInfo] = {}
        self._was_serving = False
        self._role = (self.raft.role, self.raft.term)
        self._reconcile(now_ms)

    # -- what the driver reads -------------------------------------------------------

    @property
    def image(self) -> MetadataImage:
        return self.controller.image

    @property
    def controller_id(self) -> int | None:
        return self.raft.leader_id

    def has_ready(self) -> bool:
        return self.raft.has_ready()

    def ready(self) -> Ready:
        return self.raft.ready()

    def take_outbox(self) -> list[tuple[int, Any]]:
        out, self._outbox = self._outbox, []
        return out

    def take_effects(self) -> list[NodeEffect]:
        out, self._effects = self._effects, []
        return out

    def next_deadline(self, now_ms: int) -> int:
        deadlines = [self.raft.next_deadline(), self.replicas.next_deadline(now_ms=now_ms)]
        deadlines.append(
            self._heartbeat_due if self.broker_epoch is not None else self._register_due
        )
        controller = self.controller.next_deadline()
        if controller is not None:
            deadlines.append(controller)
        deadlines.extend(call.deadline for call in self._calls.values())
        return min(deadlines)

    # -- inputs ----------------------------------------------------------------------

    def tick(self, now_ms: int) -> None:
        self.raft.tick(now_ms)
        self._after_raft(now_ms)
        self._propose(self.controller.tick(now_ms), now_ms=now_ms, reply_to=None)
        self._expire_calls(now_ms)
        self._broker_lifecycle(now_ms)
        self._apply_effects(self.replicas.tick(now_ms=now_ms), now_ms)

    def receive(self, message: Any, now_ms: int) -> None:
        if isinstance(message, RAFT_MESSAGES):
            self.raft.receive(message, now_ms)
            self._after_raft(now_ms)
        elif isinstance(message, PEER_MESSAGES):
            self._apply_effects(self.replicas.receive(message, now_ms=now_ms), now_ms)
        elif isinstance(message, ControllerCall):
            self._on_call(message, now_ms)
        elif isinstance(message, ControllerReply):
            self._on_reply(message, now_ms)
        else:
            raise TypeError(f"node {self.node_id} cannot handle {type(message).__name__}")

    def advance(self, ready: Ready, now_ms: int) -> None:
        """After ``ready`` was persisted: send its messages, apply what it committed."""
        for message in ready.messages:
            self._outbox.append((message.dst, message))
        if ready.snapshot is not None:
            self.controller.restore(ready.snapshot.data)
        committed_terms: dict[int, int] = {}
        for entry in ready.committed:
            self.controller.apply(entry.index, entry.command)
            committed_terms[entry.index] = entry.term
        if ready.snapshot_due is not None:
            self.raft.compact(ready.snapshot_due, self.controller.snapshot())
        self._release_replies(committed_terms)
        self._after_raft(now_ms)
        if ready.committed or ready.snapshot is not None:
            self._reconcile(now_ms)

    def produce(
        self, *, request_id: int, topic: str, partition: int, batch: bytes, acks: int, now_ms: int
    ) -> None:
        effects = self.replicas.produce(
            request_id=request_id,
            topic=topic,
            partition=partition,
            batch=batch,
            acks=acks,
            now_ms=now_ms,
        )
        self._apply_effects(effects, now_ms)

    def on_flushed(self, *, topic: str, partition: int, now_ms: int) -> None:
        effects = self.replicas.on_flushed(topic=topic, partition=partition, now_ms=now_ms)
        self._apply_effects(effects, now_ms)

    def on_flush_failed(self, *, topic: str, partition: int, now_ms: int) -> None:
        self._apply_effects(self.replicas.on_flush_failed(topic=topic, partition=partition), now_ms)

    def maintain(self, *, now_ms: int, wall_ms: int) -> list[Maintained]:
        """Periodic log maintenance of every replica (see ``ReplicaManager.maintain``)."""
        return self.replicas.maintain(now_ms=now_ms, wall_ms=wall_ms)

    def create_topic(self, *, request_id: int, request: CreateTopicRequest, now_ms: int) -> None:
        if not self._call(request, now_ms, request_id=request_id):
            reply = CreateTopicReply(error=ErrorCode.NOT_CONTROLLER, message="no controller")
            self._effects.append(CreateTopicDone(request_id=request_id, reply=reply))

    # -- controller side ------------------------------------------------------------

    def _after_raft(self, now_ms: int) -> None:
        role = (self.raft.role, self.raft.term)
        if role != self._role and not self.raft.is_leader:
            self._replies.clear()  # proposals of a lost term may never commit
        self._role = role
        self.controller.on_leadership(
            is_leader=self.raft.is_leader,
            term=self.raft.term,
            log_end=self.raft.log.last_index,
            now_ms=now_ms,
        )

    def _on_call(self, call: ControllerCall, now_ms: int) -> None:
        request = call.request
        decision: Decision[Any]
        if isinstance(request, RegisterRequest):
            decision = self.controller.register(request, now_ms)
        elif isinstance(request, HeartbeatRequest):
            decision = self.controller.heartbeat(request, now_ms)
        elif isinstance(request, CreateTopicRequest):
            decision = self.controller.create_topic(request, now_ms)
        else:
            decision = self.controller.alter_partition(request, now_ms)
        reply = ControllerReply(
            src=self.node_id, dst=call.src, call_id=call.call_id, reply=decision.reply
        )
        self._propose(decision, now_ms=now_ms, reply_to=reply)

    def _propose(
        self, decision: Decision[Any], *, now_ms: int, reply_to: ControllerReply | None
    ) -> None:
        last: int | None = None
        if decision.records:
            # One entry for the whole decision: its records commit together or not at
            # all (see rift_broker.controller._records).
            result = self.raft.propose(encode_records(decision.records))
            if isinstance(result, NotLeader):
                self.controller.on_leadership(
                    is_leader=False, term=self.raft.term, log_end=0, now_ms=now_ms
                )
                if reply_to is not None:
                    self._outbox.append((reply_to.dst, _not_controller(reply_to)))
                return
            last = result
        if reply_to is None:
            return
        if last is None:
            # A decision with no records of its own may still rest on records this
            # controller proposed and has not seen committed (the view runs ahead of
            # the image): "that topic exists" must not be said before it is true.
            last = self.raft.log.last_index
        if last <= self.controller.image.applied_index:
            self._outbox.append((reply_to.dst, reply_to))
        else:
            self._replies.append((last, self.raft.term, reply_to))

    def _release_replies(self, committed_terms: dict[int, int]) -> None:
        applied = self.controller.image.applied_index
        waiting: list[tuple[int, int, ControllerReply]] = []
        for index, term, reply in self._replies:
            if index > applied:
                waiting.append((index, term, reply))
            elif committed_terms.get(index, term) == term:
                self._outbox.append((reply.dst, reply))
        self._replies = waiting

    # -- broker side ----------------------------------------------------------------

    def _broker_lifecycle(self, now_ms: int) -> None:
        if self.broker_epoch is None:
            if now_ms >= self._register_due and not self._pending(RegisterRequest):
                request = RegisterRequest(
                    broker=self.node_id,
                    incarnation=self.config.incarnation,
                    host=self.config.host,
                    port=self.config.port,
                )
                self._call(request, now_ms)
                self._register_due = now_ms + self.config.heartbeat_interval_ms
        elif now_ms >= self._heartbeat_due:
            # While one is still pending, look again an interval later (a due time
            # left in the past would make the driver tick in a busy loop).
            if not self._pending(HeartbeatRequest):
                heartbeat = HeartbeatRequest(broker=self.node_id, broker_epoch=self.broker_epoch)
                self._call(heartbeat, now_ms)
            self._heartbeat_due = now_ms + self.config.heartbeat_interval_ms

    def _pending(self, kind: type) -> bool:
        return any(isinstance(c.request, kind) for c in self._calls.values())

    def _call(
        self, request: ControllerRequest, now_ms: int, *, request_id: int | None = None
    ) -> bool:
        controller = self.raft.leader_id
        if controller is None:
            return False
        self._next_call += 1
        self._calls[self._next_call] = _Call(
            request=request,
            deadline=now_ms + self.config.call_timeout_ms,
            controller=controller,
            request_id=request_id,
        )
        call = ControllerCall(
            src=self.node_id, dst=controller, call_id=self._next_call, request=request
        )
        self._outbox.append((controller, call))
        return True

    def _expire_calls(self, now_ms: int) -> None:
        # A call to a node that is no longer the controller is given up at once, as
        # on a timeout: otherwise heartbeats wait out the call timeout on a dead
        # controller, and its successor fences every broker whose session (which
        # may be shorter than that timeout) lapses meanwhile.
        controller = self.raft.leader_id
        for call_id, call in list(self._calls.items()):
            moved = controller is not None and call.controller != controller
            if call.deadline <= now_ms or moved:
                del self._calls[call_id]
                self._give_up(call, now_ms)

    def _give_up(self, call: _Call, now_ms: int) -> None:
        if isinstance(call.request, AlterPartitionRequest):
            self.replicas.reject_isr_change(
                topic=call.request.topic, partition=call.request.partition
            )
        elif isinstance(call.request, CreateTopicRequest) and call.request_id is not None:
            # The controller may or may not have created it; the client must look.
            reply = CreateTopicReply(error=ErrorCode.NOT_CONTROLLER, message="timed out")
            self._effects.append(CreateTopicDone(request_id=call.request_id, reply=reply))

    def _on_reply(self, message: ControllerReply, now_ms: int) -> None:
        call = self._calls.pop(message.call_id, None)
        if call is None:
            return  # late: already given up on
        reply: ControllerAnswer = message.reply
        if isinstance(reply, RegisterReply):
            if reply.error == ErrorCode.NONE:
                self.broker_epoch = reply.broker_epoch
                self._heartbeat_due = now_ms
        elif isinstance(reply, HeartbeatReply):
            if reply.error in (ErrorCode.STALE_BROKER_EPOCH, ErrorCode.BROKER_ID_NOT_REGISTERED):
                self.broker_epoch = None
                self._register_due = now_ms
        elif isinstance(reply, CreateTopicReply):
            if call.request_id is not None:
                self._effects.append(CreateTopicDone(request_id=call.request_id, reply=reply))
        elif isinstance(reply, AlterPartitionReply) and reply.error != ErrorCode.NONE:
            request = call.request
            assert isinstance(request, AlterPartitionRequest)
            self.replicas.reject_isr_change(topic=request.topic, partition=request.partition)

    # -- replicas --------------------------------------------------------------------

    def _serving(self) -> bool:
        """Whether this process may lead partitions: registered (this incarnation) and
        unfenced in the committed image.

        A restarted broker replays metadata that may name it leader at an old epoch;
        leading again at that epoch after losing unsynced appends would write other
        records at offsets its followers already hold. Registration fences it (its
        partitions move to new epochs) and the unfence comes after, in log order, so
        once the image shows this incarnation unfenced, any leadership it holds was
        given after the restart, at a new epoch.
        """
        me = self.controller.image.brokers.get(self.node_id)
        return me is not None and me.incarnation == self.config.incarnation and not me.fenced

    def _reconcile(self, now_ms: int) -> None:
        image = self.controller.image
        serving = self._serving()
        if serving != self._was_serving:
            self._known.clear()  # everything is judged again under the new rule
            self._was_serving = serving
        for key, info in image.partitions.items():
            if self._known.get(key) == info:
                continue
            self._known[key] = info
            leader = None if info.leader == NO_LEADER else info.leader
            if leader == self.node_id and not serving:
                leader = None  # idle until this incarnation may lead
            topic = image.topics.get(info.topic)
            configs = dict(topic.configs) if topic is not None else {}
            assignment = PartitionAssignment(
                topic=info.topic,
                partition=info.partition,
                replicas=info.replicas,
                isr=info.isr,
                leader=leader,
                leader_epoch=info.leader_epoch,
                partition_epoch=info.partition_epoch,
                min_insync_replicas=int(configs.get("min.insync.replicas", "1")),
                configs=topic.configs if topic is not None else (),
            )
            self._apply_effects(self.replicas.apply(assignment, now_ms=now_ms), now_ms)

    def _apply_effects(self, effects: list[Effect], now_ms: int) -> None:
        for effect in effects:
            if isinstance(effect, SendToPeer):
                self._outbox.append((effect.message.dst, effect.message))
            elif isinstance(effect, ProposeIsr):
                change = effect.change
                if self.broker_epoch is None or not self._call(
                    AlterPartitionRequest(
                        broker=self.node_id,
                        broker_epoch=self.broker_epoch,
                        topic=change.topic,
                        partition=change.partition,
                        leader_epoch=change.leader_epoch,
                        partition_epoch=change.partition_epoch,
                        isr=change.isr,
                    ),
                    now_ms,
                ):
                    self.replicas.reject_isr_change(topic=change.topic, partition=change.partition)
            else:
                self._effects.append(effect)


def _not_controller(reply: ControllerReply) -> ControllerReply:
    answer: ControllerAnswer
    if isinstance(reply.reply, RegisterReply):
        answer = RegisterReply(error=ErrorCode.NOT_CONTROLLER)
    elif isinstance(reply.reply, HeartbeatReply):
        answer = HeartbeatReply(error=ErrorCode.NOT_CONTROLLER)
    elif isinstance(reply.reply, CreateTopicReply):
        answer = CreateTopicReply(error=ErrorCode.NOT_CONTROLLER)
    else:
        answer = AlterPartitionReply(error=ErrorCode.NOT_CONTROLLER)
    return ControllerReply(src=reply.src, dst=reply.dst, call_id=reply.call_id, reply=answer)
