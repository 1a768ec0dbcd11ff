"""The controller: turns broker requests and timer ticks into metadata records.

Theory of operation
-------------------
Every node runs a ``Controller`` next to its ``RaftNode``. The driver feeds it
every committed Raft entry (``apply``) and installed snapshot (``restore``), so
``image`` — the committed ``MetadataImage`` — is what the local broker follows.
After each Ready the driver reports the Raft role (``on_leadership``); the node
that leads Raft becomes the *active* controller, in two steps:

=========  ===================================================  =========
state      event                                                next
=========  ===================================================  =========
standby    on_leadership(is_leader=True, term, log_end)         pending
pending    ``image.applied_index >= log_end`` (seen by a call)  active
pending/   on_leadership(is_leader=False) or a new term         standby
active
=========  ===================================================  =========

Waiting for ``log_end`` (the leader's log end at election, i.e. its no-op) makes
the active controller decide on everything its predecessors committed. From
then on it decides on ``view``: the committed image plus every record it has
emitted and not yet seen committed (only its own proposals can enter the log in
its term, so the view is exact). Activation gives every registered broker a full
heartbeat session, so a failover does not fence the cluster.

Requests (``register``, ``heartbeat``, ``create_topic``, ``alter_partition``)
and ``tick`` return a ``Decision``: records to propose as one Raft entry, with
``encode_records`` (they commit together or not at all), and a reply. The driver
sends the reply once that entry is committed (applied), or at once if there are
none. If a proposal is refused
(``NotLeader``), it answers ``NOT_CONTROLLER`` and calls
``on_leadership(is_leader=False, ...)``. A standby controller answers every
request with ``NOT_CONTROLLER``.

Decisions are pure functions of ``_election``/``_placement``; this object only
keeps the view and the heartbeat sessions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Generic, TypeVar

from rift_broker.controller._election import (
    AlterPartitionRequest,
    ErrorCode,
    alter_partition,
    elect,
    remove_from_isr,
)
from rift_broker.controller._image import MetadataImage, PartitionInfo
from rift_broker.controller._placement import place_replicas
from rift_broker.controller._records import (
    CreateTopic,
    FenceBroker,
    MetadataRecord,
    PartitionRecord,
    RegisterBroker,
    UnfenceBroker,
)
from rift_broker.controller._sessions import BrokerSessions

__all__ = [
    "AlterPartitionReply",
    "Controller",
    "ControllerConfig",
    "CreateTopicReply",
    "CreateTopicRequest",
    "Decision",
    "HeartbeatReply",
    "HeartbeatRequest",
    "RegisterReply",
    "RegisterRequest",
]

R = TypeVar("R")
_TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]{1,249}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ControllerConfig:
    session_timeout_ms: int = 9_000  # Kafka's broker.session.timeout.ms
    unclean_leader_election: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision(Generic[R]):
    """Propose ``records``, in order, as one entry; reply with ``reply`` once it is
    committed."""

    reply: R
    records: tuple[MetadataRecord, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterRequest:
    broker: int
    incarnation: str  # unique per broker process start; a retry reuses it
    host: str
    port: int
    rack: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterReply:
    error: ErrorCode
    broker_epoch: int = -1


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatRequest:
    broker: int
    broker_epoch: int
    want_unfence: bool = True  # the broker has caught up with the metadata log


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatReply:
    error: ErrorCode
    fenced: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateTopicRequest:
    topic: str
    partitions: int
    replication_factor: int
    configs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateTopicReply:
    error: ErrorCode
    topic_id: int = 0
    message: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class AlterPartitionReply:
    error: ErrorCode
    partition: PartitionInfo | None = None


class Controller:
    def __init__(self, node_id: int, *, config: ControllerConfig | None = None) -> None:
        self.node_id = node_id
        self.config = config if config is not None else ControllerConfig()
        self.image = MetadataImage()
        self.sessions = BrokerSessions(session_timeout_ms=self.config.session_timeout_ms)
        self.view: MetadataImage | None = None  # set while active
        self._term = -1
        self._activation_index: int | None = None  # set while pending

    @property
    def active(self) -> bool:
        return self.view is not None

    @property
    def term(self) -> int | None:
        """The Raft term this controller leads (or waits to lead) in; None on standby."""
        return self._term if self._term >= 0 else None

    # -- following the log ---------------------------------------------------

    def apply(self, index: int, command: bytes) -> None:
        """Apply one committed Raft entry (``Ready.committed``) to ``image``."""
        self.image.apply_entry(index, command)

    def restore(self, data: bytes) -> None:
        """Replace ``image`` by a snapshot (``Ready.snapshot`` or at restart)."""
        self.image = MetadataImage.restore(data)
        self._resign()

    def snapshot(self) -> bytes:
        """The committed image, for ``RaftNode.compact(image.applied_index, ...)``."""
        return self.image.snapshot()

    def on_leadership(self, *, is_leader: bool, term: int, log_end: int, now_ms: int) -> None:
        """Report the Raft role after each Ready (``log_end``: the log's last index)."""
        if not is_leader:
            self._resign()
            return
        if term != self._term:
            self._resign()
            self._term = term
            self._activation_index = log_end
        self._maybe_activate(now_ms)

    def _resign(self) -> None:
        self.view = None
        self._activation_index = None
        self._term = -1

    def _maybe_activate(self, now_ms: int) -> MetadataImage | None:
        pending = self._activation_index
        if self.view is None and pending is not None and self.image.applied_index >= pending:
            self.view = self.image.copy()
            self.sessions.reset(self.view.brokers, now_ms)
            self._activation_index = None
        return self.view

    def next_deadline(self) -> int | None:
        return self.sessions.next_deadline() if self.active else None

    # -- requests --------------------------------------------------------------

    def register(self, request: RegisterRequest, now_ms: int) -> Decision[RegisterReply]:
        view = self._maybe_activate(now_ms)
        if view is None:
            return Decision(reply=RegisterReply(error=ErrorCode.NOT_CONTROLLER))
        self.sessions.renew(request.broker, now_ms)
        existing = view.brokers.get(request.broker)
        if existing is not None and existing.incarnation == request.incarnation:
            return Decision(reply=RegisterReply(error=ErrorCode.NONE, broker_epoch=existing.epoch))
        epoch = view.max_broker_epoch() + 1
        record = RegisterBroker(
            broker=request.broker,
            epoch=epoch,
            incarnation=request.incarnation,
            host=request.host,
            port=request.port,
            rack=request.rack,
        )
        # A new incarnation restarted: until it catches up it leads and follows nothing.
        records = [*self._emit(view, [record]), *self._fence_partitions(view, request.broker)]
        reply = RegisterReply(error=ErrorCode.NONE, broker_epoch=epoch)
        return Decision(reply=reply, records=tuple(records))

    def heartbeat(self, request: HeartbeatRequest, now_ms: int) -> Decision[HeartbeatReply]:
        view = self._maybe_activate(now_ms)
        if view is None:
            return Decision(reply=HeartbeatReply(error=ErrorCode.NOT_CONTROLLER))
        broker = view.brokers.get(request.broker)
        if broker is None:
            return Decision(reply=HeartbeatReply(error=ErrorCode.BROKER_ID_NOT_REGISTERED))
        if broker.epoch != request.broker_epoch:
            return Decision(reply=HeartbeatReply(error=ErrorCode.STALE_BROKER_EPOCH))
        self.sessions.renew(request.broker, now_ms)
        records: list[MetadataRecord] = []
        if broker.fenced and request.want_unfence:
            records += self._emit(view, [UnfenceBroker(broker=broker.broker, epoch=broker.epoch)])
            records += self._elect_offline(view)
        fenced = view.brokers[request.broker].fenced
        return Decision(
            reply=HeartbeatReply(error=ErrorCode.NONE, fenced=fenced), records=tuple(records)
        )

    def create_topic(self, request: CreateTopicRequest, now_ms: int) -> Decision[CreateTopicReply]:
        view = self._maybe_activate(now_ms)
        if view is None:
            return Decision(reply=CreateTopicReply(error=ErrorCode.NOT_CONTROLLER))
        if not _TOPIC_NAME.fullmatch(request.topic) or request.topic in (".", ".."):
            return _topic_error(ErrorCode.INVALID_TOPIC_EXCEPTION, f"bad name {request.topic!r}")
        if request.topic in view.topics:
            return _topic_error(ErrorCode.TOPIC_ALREADY_EXISTS, f"{request.topic} exists")
        if request.partitions < 1:
            return _topic_error(ErrorCode.INVALID_PARTITIONS, "partitions must be >= 1")
        try:
            assignment = place_replicas(
                view.live_brokers(),
                partitions=request.partitions,
                replication_factor=request.replication_factor,
                start=len(view.topics),
            )
        except ValueError as e:
            return _topic_error(ErrorCode.INVALID_REPLICATION_FACTOR, str(e))
        topic_id = view.max_topic_id() + 1
        records: list[MetadataRecord] = [
            CreateTopic(
                topic=request.topic,
                topic_id=topic_id,
                partitions=request.partitions,
                configs=request.configs,
            )
        ]
        for partition, replicas in enumerate(assignment):
            records.append(
                PartitionRecord(
                    topic=request.topic,
                    partition=partition,
                    replicas=replicas,
                    isr=replicas,
                    leader=replicas[0],
                )
            )
        reply = CreateTopicReply(error=ErrorCode.NONE, topic_id=topic_id)
        return Decision(reply=reply, records=tuple(self._emit(view, records)))

    def alter_partition(
        self, request: AlterPartitionRequest, now_ms: int
    ) -> Decision[AlterPartitionReply]:
        view = self._maybe_activate(now_ms)
        if view is None:
            return Decision(reply=AlterPartitionReply(error=ErrorCode.NOT_CONTROLLER))
        broker = view.brokers.get(request.broker)
        result = alter_partition(
            view.partitions.get((request.topic, request.partition)),
            request,
            broker_epoch=broker.epoch if broker is not None else None,
            live=view.live_brokers(),
        )
        if isinstance(result, ErrorCode):
            return Decision(reply=AlterPartitionReply(error=result))
        records = tuple(self._emit(view, [result]))
        partition = view.partitions[request.topic, request.partition]
        return Decision(
            reply=AlterPartitionReply(error=ErrorCode.NONE, partition=partition), records=records
        )

    def tick(self, now_ms: int) -> Decision[None]:
        """Fence brokers whose sessions lapsed and elect leaders where needed."""
        view = self._maybe_activate(now_ms)
        if view is None:
            return Decision(reply=None)
        records: list[MetadataRecord] = []
        for broker_id in self.sessions.expired(now_ms):
            self.sessions.forget(broker_id)
            broker = view.brokers.get(broker_id)
            if broker is None or broker.fenced:
                continue
            records += self._emit(view, [FenceBroker(broker=broker_id, epoch=broker.epoch)])
            records += self._fence_partitions(view, broker_id)
        records += self._elect_offline(view)
        return Decision(reply=None, records=tuple(records))

    # -- decisions on the view -------------------------------------------------

    def _emit(self, view: MetadataImage, records: list[MetadataRecord]) -> list[MetadataRecord]:
        """Apply ``records`` to the view; keep those that change something."""
        return [r for r in records if view.apply(r)]

    def _fence_partitions(self, view: MetadataImage, broker: int) -> list[MetadataRecord]:
        live = view.live_brokers() - {broker}
        unclean = self.config.unclean_leader_election
        changes: list[MetadataRecord] = []
        for partition in sorted(view.partitions.values(), key=lambda p: (p.topic, p.partition)):
            change = remove_from_isr(partition, broker, live, unclean=unclean)
            if change is not None:
                changes += self._emit(view, [change])
        return changes

    def _elect_offline(self, view: MetadataImage) -> list[MetadataRecord]:
        live = view.live_brokers()
        unclean = self.config.unclean_leader_election
        changes: list[MetadataRecord] = []
        for partition in sorted(view.partitions.values(), key=lambda p: (p.topic, p.partition)):
            change = elect(partition, live, unclean=unclean)
            if change is not None:
                changes += self._emit(view, [change])
        return changes


def _topic_error(error: ErrorCode, message: str) -> Decision[CreateTopicReply]:
    return Decision(reply=CreateTopicReply(error=error, message=message))
