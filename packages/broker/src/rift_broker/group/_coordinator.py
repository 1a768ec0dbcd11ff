"""The group coordinator's front door: routing, time, durability and request ids.

Theory of operation
-------------------
A :class:`GroupCoordinator` serves the groups whose ``__consumer_offsets`` partition
it has loaded (``partition_for(group_id, num_partitions)``; the driver calls
:meth:`~GroupCoordinator.load` when this node becomes that partition's leader and
:meth:`~GroupCoordinator.unload` when it stops). Everything else gets NOT_COORDINATOR.

Every call takes ``now_ms`` and returns a list of outputs: replies (each naming the
``request_id`` the driver gave the request) and :class:`Append` requests. Before and
after handling a request the coordinator fires every timer due at ``now_ms`` (session
expiries, join deadlines), exactly as if ``tick(now_ms)`` had been called, so a
reply may arrive from any call. The driver calls ``tick`` at ``next_deadline()``.

Durability: an OffsetCommit is answered only when the driver reports its append
durable with ``on_appended(append_id=..., error=0)`` (or failed, with the append's
Kafka error code, which is translated as Kafka does). A leader's SyncGroup likewise
waits for the group's metadata record. Loading replays a partition's records: last
value per key wins, a tombstone deletes.

Each request id is answered exactly once; reusing one that still waits is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from rift_broker.group._config import GroupConfig
from rift_broker.group._errors import GroupErrorCode as E
from rift_broker.group._errors import commit_error_for_append, store_error_for_append
from rift_broker.group._group import Effect, Group, StoreGroup
from rift_broker.group._messages import (
    Append,
    GroupView,
    HeartbeatReply,
    JoinProtocol,
    JoinReply,
    LeaveMemberResult,
    LeaveReply,
    OffsetCommitEntry,
    Output,
    SyncReply,
)
from rift_broker.group._offsets import (
    OffsetStore,
    PendingCommit,
    fetch,
    finish_commit,
    prepare_commit,
)
from rift_broker.group._partitioning import partition_for
from rift_broker.group._records import (
    GroupKey,
    OffsetKey,
    OffsetsRecord,
    OffsetValue,
    decode_group_value,
    decode_key,
    decode_offset_value,
    encode_group,
)
from rift_broker.group._snapshot import group_from_value, group_to_value, group_view

__all__ = ["GroupCoordinator"]


@dataclass(slots=True, kw_only=True)
class _PendingStore:
    group_id: str
    generation: int


class GroupCoordinator:
    """Consumer-group coordinator for the ``__consumer_offsets`` partitions it loaded."""

    def __init__(
        self,
        *,
        num_partitions: int = 50,
        config: GroupConfig | None = None,
        member_id_factory: Callable[[str], str] | None = None,
    ) -> None:
        if num_partitions <= 0:
            raise ValueError(f"num_partitions must be positive, got {num_partitions}")
        self.num_partitions = num_partitions
        self.config = config or GroupConfig()
        self._member_id_factory = member_id_factory
        self._ids = 0
        self._owned: set[int] = set()
        self._groups: dict[str, Group] = {}
        self._offsets = OffsetStore()
        self._waiting: set[int] = set()
        self._appends: dict[int, tuple[int, PendingCommit | _PendingStore]] = {}
        self._next_append_id = 1

    # -- ownership --------------------------------------------------------------

    def partition_for(self, group_id: str) -> int:
        """The ``__consumer_offsets`` partition owning ``group_id`` (FindCoordinator)."""
        return partition_for(group_id, self.num_partitions)

    def owns(self, group_id: str) -> bool:
        return self.partition_for(group_id) in self._owned

    def load(
        self, *, partition: int, records: Iterable[OffsetsRecord], now_ms: int
    ) -> list[Output]:
        """Become coordinator of ``partition``, replaying its records in log order.

        Raises ``RecordFormatError`` on a record that does not decode. Records of groups
        that hash to another partition (another partition count) are skipped.
        """
        if not 0 <= partition < self.num_partitions:
            raise ValueError(f"partition {partition} not in 0..{self.num_partitions - 1}")
        if partition in self._owned:
            raise ValueError(f"partition {partition} is already loaded; unload it first")
        latest: dict[OffsetKey | GroupKey, bytes | None] = {}
        for record in records:
            latest[decode_key(record.key)] = record.value
        for key, value in latest.items():
            if self.partition_for(key.group_id) != partition or value is None:
                continue
            if isinstance(key, GroupKey):
                group = group_from_value(
                    key.group_id, self.config, decode_group_value(value), now_ms
                )
                self._groups[key.group_id] = group
            else:
                offset = decode_offset_value(value)
                self._offsets.apply(key.group_id, key.topic, key.partition, offset, seq=0)
        for group_id in self._offsets.group_ids():
            mine = self.partition_for(group_id) == partition
            if mine and group_id not in self._groups and self._offsets.committed(group_id):
                self._groups[group_id] = Group(group_id, self.config)  # offsets only: Empty
        self._owned.add(partition)
        return self._call(None, now_ms, lambda out: None)

    def unload(self, *, partition: int, now_ms: int) -> list[Output]:
        """Stop coordinating ``partition``: every waiting request gets NOT_COORDINATOR."""
        out: list[Effect | Append] = []
        self._owned.discard(partition)
        for group_id in [g for g in self._groups if self.partition_for(g) == partition]:
            effects: list[Effect] = []
            self._groups.pop(group_id).kill(E.NOT_COORDINATOR, effects)
            out.extend(effects)
        for group_id in self._offsets.group_ids():
            if self.partition_for(group_id) == partition:
                self._offsets.drop(group_id)
        for append_id, (p, pending) in list(self._appends.items()):
            if p == partition:
                del self._appends[append_id]
                if isinstance(pending, PendingCommit):
                    out.append(finish_commit(self._offsets, pending, E.NOT_COORDINATOR, seq=0))
        return self._finish(out, now_ms)

    # -- group membership requests ----------------------------------------------

    def join(
        self,
        *,
        request_id: int,
        group_id: str,
        member_id: str,
        client_id: str,
        client_host: str = "",
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        protocol_type: str,
        protocols: Sequence[JoinProtocol],
        require_known_member_id: bool,
        now_ms: int,
    ) -> list[Output]:
        """JoinGroup. v0 has no rebalance timeout: pass the session timeout. Set
        ``require_known_member_id`` for v4+ (MEMBER_ID_REQUIRED)."""

        def body(out: list[Effect | Append]) -> None:
            def fail(error: E) -> None:
                out.append(JoinReply(request_id=request_id, error=error, member_id=member_id))

            error = self._route(group_id)
            cfg = self.config
            if error is E.NONE and not (
                cfg.min_session_timeout_ms <= session_timeout_ms <= cfg.max_session_timeout_ms
            ):
                error = E.INVALID_SESSION_TIMEOUT
            if error is E.NONE and group_id not in self._groups and member_id:
                error = E.UNKNOWN_MEMBER_ID
            if error is not E.NONE:
                return fail(error)
            created = group_id not in self._groups
            group = self._groups.setdefault(group_id, Group(group_id, self.config))
            effects: list[Effect] = []
            group.join(
                request_id=request_id,
                member_id=member_id,
                client_id=client_id,
                client_host=client_host,
                session_timeout_ms=session_timeout_ms,
                rebalance_timeout_ms=rebalance_timeout_ms,
                protocol_type=protocol_type,
                protocols=tuple((p.name, p.metadata) for p in protocols),
                require_known_member_id=require_known_member_id,
                new_member_id=lambda: self._new_member_id(group, client_id),
                now_ms=now_ms,
                out=effects,
            )
            out.extend(effects)
            if created and not group.members and not group.pending:
                del self._groups[group_id]  # a join that failed leaves no trace
            return None

        return self._call(request_id, now_ms, body)

    def sync(
        self,
        *,
        request_id: int,
        group_id: str,
        member_id: str,
        generation_id: int,
        assignments: Mapping[str, bytes],
        now_ms: int,
    ) -> list[Output]:
        """SyncGroup. ``assignments`` (member id -> assignment) counts only from the leader."""

        def body(out: list[Effect | Append]) -> None:
            group, error = self._member_group(group_id)
            if group is None:
                out.append(SyncReply(request_id=request_id, error=error))
                return
            effects: list[Effect] = []
            group.sync(
                request_id=request_id,
                member_id=member_id,
                generation=generation_id,
                assignments=assignments,
                now_ms=now_ms,
                out=effects,
            )
            out.extend(effects)

        return self._call(request_id, now_ms, body)

    def heartbeat(
        self, *, request_id: int, group_id: str, member_id: str, generation_id: int, now_ms: int
    ) -> list[Output]:
        def body(out: list[Effect | Append]) -> None:
            group, error = self._member_group(group_id)
            if group is None:
                out.append(HeartbeatReply(request_id=request_id, error=error))
                return
            effects: list[Effect] = []
            group.heartbeat(
                request_id=request_id,
                member_id=member_id,
                generation=generation_id,
                now_ms=now_ms,
                out=effects,
            )
            out.extend(effects)

        return self._call(request_id, now_ms, body)

    def leave(
        self, *, request_id: int, group_id: str, member_ids: Sequence[str], now_ms: int
    ) -> list[Output]:
        """LeaveGroup. ``error`` is group-level; per-member errors are in ``members``
        (v0-2 send one member: answer its error when the group-level one is NONE)."""

        def body(out: list[Effect | Append]) -> None:
            error = self._route(group_id)
            if error is not E.NONE:
                out.append(LeaveReply(request_id=request_id, error=error))
                return
            group = self._groups.get(group_id)
            results = []
            effects: list[Effect] = []
            for member_id in member_ids:
                if group is None:
                    code = E.UNKNOWN_MEMBER_ID
                else:
                    code = group.leave(member_id=member_id, now_ms=now_ms, out=effects)
                results.append(LeaveMemberResult(member_id=member_id, error=code))
            out.extend(effects)
            out.append(LeaveReply(request_id=request_id, error=E.NONE, members=tuple(results)))

        return self._call(request_id, now_ms, body)

    # -- offsets ----------------------------------------------------------------

    def commit_offsets(
        self,
        *,
        request_id: int,
        group_id: str,
        member_id: str,
        generation_id: int,
        offsets: Sequence[OffsetCommitEntry],
        now_ms: int,
    ) -> list[Output]:
        """OffsetCommit (v2-7). Generation -1 is a standalone commit, allowed only while
        the group is Empty. Answered when the append is durable (``on_appended``)."""

        def body(out: list[Effect | Append]) -> None:
            error = self._route(group_id)
            group = self._groups.get(group_id)
            if error is E.NONE and group is None:
                if generation_id >= 0:
                    error = E.ILLEGAL_GENERATION
                else:  # a standalone consumer: Kafka keeps an Empty group for it
                    group = self._groups[group_id] = Group(group_id, self.config)
            if error is E.NONE and group is not None:
                error = group.check_commit(
                    member_id=member_id, generation=generation_id, now_ms=now_ms
                )
            pending, records = prepare_commit(
                request_id=request_id,
                group_id=group_id,
                offsets=offsets,
                error=error,
                max_metadata_size=self.config.max_metadata_size,
                now_ms=now_ms,
            )
            if records:
                out.append(self._append(self.partition_for(group_id), records, pending))
            else:
                out.append(finish_commit(self._offsets, pending, E.NONE, seq=0))

        return self._call(request_id, now_ms, body)

    def fetch_offsets(
        self,
        *,
        request_id: int,
        group_id: str,
        partitions: Sequence[tuple[str, int]] | None,
        now_ms: int,
    ) -> list[Output]:
        """OffsetFetch (v1-5): committed offsets, -1 where none; ``None`` lists all."""

        def body(out: list[Effect | Append]) -> None:
            reply = fetch(
                self._offsets,
                request_id=request_id,
                group_id=group_id,
                partitions=partitions,
                error=self._route(group_id),
            )
            out.append(reply)

        return self._call(request_id, now_ms, body)

    # -- time and durability ----------------------------------------------------

    def tick(self, now_ms: int) -> list[Output]:
        """Fire every timer due at ``now_ms`` (session expiries, join deadlines)."""
        return self._call(None, now_ms, lambda out: None)

    def next_deadline(self) -> int | None:
        """When ``tick`` next has something to do (None: nothing is scheduled)."""
        return min(
            (d for g in self._groups.values() if (d := g.next_deadline()) is not None),
            default=None,
        )

    def on_appended(self, *, append_id: int, error: int = 0, now_ms: int) -> list[Output]:
        """The driver's report on an :class:`Append`: durable (``error`` 0) or failed
        with the append's Kafka error code. Unknown ids (e.g. unloaded) are ignored."""

        def body(out: list[Effect | Append]) -> None:
            entry = self._appends.pop(append_id, None)
            if entry is None:
                return
            _, pending = entry
            if isinstance(pending, PendingCommit):
                code = commit_error_for_append(error)
                out.append(finish_commit(self._offsets, pending, code, seq=append_id))
                return
            group = self._groups.get(pending.group_id)
            if group is not None:
                effects: list[Effect] = []
                code = store_error_for_append(error)
                group.on_stored(
                    generation=pending.generation, error=code, now_ms=now_ms, out=effects
                )
                out.extend(effects)

        return self._call(None, now_ms, body)

    # -- introspection ----------------------------------------------------------

    def group_ids(self) -> list[str]:
        """Every group this coordinator serves (ListGroups), sorted."""
        return sorted(self._groups)

    def describe(self, group_id: str) -> GroupView | None:
        group = self._groups.get(group_id)
        return None if group is None else group_view(group)

    def describe_group(self, group_id: str) -> tuple[E, GroupView | None]:
        """DescribeGroups: (error, view), routed like every group request (an empty
        id is invalid, a group of a partition not loaded here is NOT_COORDINATOR); the
        view is None for a group that does not exist."""
        error = self._route(group_id)
        return error, self.describe(group_id) if error is E.NONE else None

    def committed(self, group_id: str) -> dict[tuple[str, int], OffsetValue]:
        """Durably committed offsets of ``group_id`` by (topic, partition)."""
        return self._offsets.committed(group_id)

    @property
    def waiting_requests(self) -> frozenset[int]:
        """Request ids that have not been answered yet."""
        return frozenset(self._waiting)

    # -- internals --------------------------------------------------------------

    def _route(self, group_id: str) -> E:
        if not group_id:
            return E.INVALID_GROUP_ID
        if not self.owns(group_id):
            return E.NOT_COORDINATOR
        return E.NONE

    def _member_group(self, group_id: str) -> tuple[Group | None, E]:
        error = self._route(group_id)
        group = self._groups.get(group_id) if error is E.NONE else None
        if error is E.NONE and group is None:
            error = E.UNKNOWN_MEMBER_ID
        return group, error

    def _new_member_id(self, group: Group, client_id: str) -> str:
        while True:
            if self._member_id_factory is not None:
                member_id = self._member_id_factory(client_id)
            else:
                self._ids += 1
                member_id = f"{client_id}-{self._ids}"
            if member_id not in group.members and member_id not in group.pending:
                return member_id

    def _append(
        self, partition: int, records: list[OffsetsRecord], pending: PendingCommit | _PendingStore
    ) -> Append:
        append_id = self._next_append_id
        self._next_append_id += 1
        self._appends[append_id] = (partition, pending)
        return Append(append_id=append_id, partition=partition, records=tuple(records))

    def _fire(self, now_ms: int, out: list[Effect | Append]) -> None:
        for group in list(self._groups.values()):
            deadline = group.next_deadline()
            if deadline is not None and now_ms >= deadline:
                effects: list[Effect] = []
                group.tick(now_ms, effects)
                out.extend(effects)

    def _call(
        self, request_id: int | None, now_ms: int, body: Callable[[list[Effect | Append]], None]
    ) -> list[Output]:
        if request_id is not None:
            if request_id in self._waiting:
                raise ValueError(f"request id {request_id} is still waiting for its reply")
            self._waiting.add(request_id)
        out: list[Effect | Append] = []
        self._fire(now_ms, out)
        body(out)
        self._fire(now_ms, out)
        return self._finish(out, now_ms)

    def _finish(self, effects: list[Effect | Append], now_ms: int) -> list[Output]:
        outputs: list[Output] = []
        for effect in effects:
            if isinstance(effect, StoreGroup):
                group = self._groups[effect.group_id]
                value = group_to_value(group, effect.assignments, now_ms)
                record = encode_group(GroupKey(group_id=effect.group_id), value)
                pending = _PendingStore(group_id=effect.group_id, generation=effect.generation)
                outputs.append(self._append(self.partition_for(effect.group_id), [record], pending))
                continue
            if not isinstance(effect, Append):
                if effect.request_id not in self._waiting:
                    raise AssertionError(f"request {effect.request_id} answered twice")
                self._waiting.discard(effect.request_id)
            outputs.append(effect)
        return outputs
