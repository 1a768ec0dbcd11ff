"""One consumer group's membership: Kafka's classic rebalance protocol as a state machine.

Theory of operation
-------------------
Members join (JoinGroup), the coordinator waits until every known member has
rejoined — or the rebalance timeout passes and the laggards are dropped — then bumps
the generation, picks a protocol by vote and answers every join: the leader's answer
carries every member's metadata. The leader computes an assignment and sends it in
SyncGroup; once that assignment is durable in ``__consumer_offsets`` every member's
SyncGroup is answered with its share and the group is Stable. Heartbeats keep
sessions alive and tell members (REBALANCE_IN_PROGRESS) when to rejoin.

=====================  ===========================================  ===================
from                   event                                        to
=====================  ===========================================  ===================
Empty                  a member joins                               PreparingRebalance
PreparingRebalance     all members rejoined / rebalance timeout     CompletingRebalance
PreparingRebalance     ... and no member is left                    Empty (generation+1)
CompletingRebalance    leader's assignment durable                  Stable
CompletingRebalance    assignment append failed; a member joins     PreparingRebalance
                       with new metadata, leaves or expires
Stable                 new member, leader rejoins, metadata         PreparingRebalance
                       changes, a member leaves or expires
any                    the coordinator unloads the partition        Dead
=====================  ===========================================  ===================

Invariants: the generation never decreases; an assignment is *live* only in Stable
and only for the current generation (every rebalance clears them); a member waiting
for a join or sync answer never expires by session (the rebalance timeout or the
leader's session bounds the wait); each waiting request id is answered exactly once.

MEMBER_ID_REQUIRED (JoinGroup v4+): an unknown joiner gets a fresh id and that
error at once; the id is *pending* (it holds up a join's completion) until the
member rejoins with it or its session timeout passes.

The first member of an Empty group starts an *initial delay*
(``initial_rebalance_delay_ms``): the join completes only when the delay ends,
extended by one delay at a time, up to the rebalance timeout, while new members
arrive. Otherwise a join completes as soon as every member rejoined.

A group loaded from ``__consumer_offsets`` with members resumes Stable in its stored
generation with fresh session deadlines (as in Kafka): members that keep
heartbeating keep their assignment; the others expire and the rest rebalance.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum

from rift_broker.group._config import GroupConfig
from rift_broker.group._errors import GroupErrorCode as E
from rift_broker.group._member import Member, candidate_protocols, select_protocol
from rift_broker.group._messages import HeartbeatReply, JoinMember, JoinReply, Reply, SyncReply

__all__ = ["Group", "GroupState", "StoreGroup"]


class GroupState(Enum):
    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


S = GroupState
_VALID_PREVIOUS: dict[GroupState, frozenset[GroupState]] = {
    S.PREPARING_REBALANCE: frozenset({S.EMPTY, S.STABLE, S.COMPLETING_REBALANCE}),
    S.COMPLETING_REBALANCE: frozenset({S.PREPARING_REBALANCE}),
    S.STABLE: frozenset({S.COMPLETING_REBALANCE}),
    S.EMPTY: frozenset({S.PREPARING_REBALANCE}),
    S.DEAD: frozenset(S),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreGroup:
    """Internal effect: persist the group with these assignments; the driver's answer
    goes to ``Group.on_stored``."""

    group_id: str
    generation: int
    assignments: Mapping[str, bytes]


Effect = Reply | StoreGroup


class Group:
    """The membership state machine of one group (see the module docstring)."""

    def __init__(self, group_id: str, config: GroupConfig, *, generation: int = 0) -> None:
        self.group_id = group_id
        self.config = config
        self.state = S.EMPTY
        self.generation = generation
        self.protocol_type: str | None = None
        self.protocol: str | None = None
        self.leader: str | None = None
        self.members: dict[str, Member] = {}  # join order: the fallback leader is first
        self.pending: dict[str, int] = {}  # MEMBER_ID_REQUIRED ids -> deadline
        self.join_deadline_ms: int | None = None
        self.initial_remaining_ms: int | None = None  # None: not in the initial delay
        self.new_member_added = False
        self.proposed: dict[str, bytes] | None = None  # leader's assignment being stored

    # -- requests ---------------------------------------------------------------

    def join(
        self,
        *,
        request_id: int,
        member_id: str,
        client_id: str,
        client_host: str,
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        protocol_type: str,
        protocols: tuple[tuple[str, bytes], ...],
        require_known_member_id: bool,
        new_member_id: Callable[[], str],
        now_ms: int,
        out: list[Effect],
    ) -> None:
        def fail(error: E, mid: str = member_id) -> None:
            out.append(JoinReply(request_id=request_id, error=error, member_id=mid))

        if self.state is S.DEAD:
            return fail(E.COORDINATOR_NOT_AVAILABLE)
        if not self._supports(protocol_type, [name for name, _ in protocols]):
            return fail(E.INCONSISTENT_GROUP_PROTOCOL)
        if member_id == "" and require_known_member_id:
            member_id = new_member_id()
            self.pending[member_id] = now_ms + session_timeout_ms
            return fail(E.MEMBER_ID_REQUIRED, member_id)
        member = self.members.get(member_id)
        if member is None:
            if member_id == "":
                member_id = new_member_id()
            elif self.pending.pop(member_id, None) is None:
                return fail(E.UNKNOWN_MEMBER_ID)
            member = Member(
                member_id=member_id,
                client_id=client_id,
                client_host=client_host,
                session_timeout_ms=session_timeout_ms,
                rebalance_timeout_ms=rebalance_timeout_ms,
                protocols=protocols,
                deadline_ms=now_ms + session_timeout_ms,
                join_request=request_id,
            )
            if not self.members:
                self.protocol_type = protocol_type
            self.members[member_id] = member
            if self.leader is None:
                self.leader = member_id
            if self.initial_remaining_ms is not None:
                self.new_member_added = True
            self._maybe_prepare_rebalance(now_ms, out)
            self._maybe_complete_join(now_ms, out)
            return None
        # A known member. Rejoining with what it had changes nothing unless it leads
        # a Stable group (the leader rejoins to reassign, e.g. after a metadata change).
        unchanged = member.matches(protocols)
        if unchanged and (
            self.state is S.COMPLETING_REBALANCE
            or (self.state is S.STABLE and member_id != self.leader)
        ):
            member.heard_from(now_ms)
            out.append(self._join_reply(request_id, member))
            return None
        if member.join_request is not None:  # superseded by this retry
            out.append(JoinReply(request_id=member.join_request, error=E.REBALANCE_IN_PROGRESS))
        member.protocols = protocols
        member.session_timeout_ms = session_timeout_ms
        member.rebalance_timeout_ms = rebalance_timeout_ms
        member.join_request = request_id
        member.heard_from(now_ms)
        self._maybe_prepare_rebalance(now_ms, out)
        self._maybe_complete_join(now_ms, out)
        return None

    def sync(
        self,
        *,
        request_id: int,
        member_id: str,
        generation: int,
        assignments: Mapping[str, bytes],
        now_ms: int,
        out: list[Effect],
    ) -> None:
        member = self.members.get(member_id)
        error = self._check_member(member, generation)
        if error is E.NONE and self.state is S.PREPARING_REBALANCE:
            error = E.REBALANCE_IN_PROGRESS
        if error is not E.NONE or member is None:
            out.append(SyncReply(request_id=request_id, error=error))
            return
        member.heard_from(now_ms)
        if self.state is S.STABLE:
            out.append(
                SyncReply(request_id=request_id, error=E.NONE, assignment=member.assignment or b"")
            )
            return
        # CompletingRebalance: wait for the leader's assignment to become durable.
        if member.sync_request is not None:  # superseded by this retry
            out.append(SyncReply(request_id=member.sync_request, error=E.REBALANCE_IN_PROGRESS))
        member.sync_request = request_id
        if member_id == self.leader and self.proposed is None:
            # Members the leader left out get an empty assignment, as in Kafka.
            self.proposed = {mid: assignments.get(mid, b"") for mid in self.members}
            out.append(
                StoreGroup(
                    group_id=self.group_id, generation=self.generation, assignments=self.proposed
                )
            )

    def heartbeat(
        self, *, request_id: int, member_id: str, generation: int, now_ms: int, out: list[Effect]
    ) -> None:
        member = self.members.get(member_id)
        error = self._check_member(member, generation)
        if error is E.NONE and member is not None:
            member.heard_from(now_ms)
            # CompletingRebalance answers NONE: a member may heartbeat between its join
            # answer and its sync answer (Kafka 2.4+), and that is no reason to rejoin.
            if self.state is S.PREPARING_REBALANCE:
                error = E.REBALANCE_IN_PROGRESS
        out.append(HeartbeatReply(request_id=request_id, error=error))

    def leave(self, *, member_id: str, now_ms: int, out: list[Effect]) -> E:
        if self.state is S.DEAD:
            return E.COORDINATOR_NOT_AVAILABLE
        if self.pending.pop(member_id, None) is not None:
            self._maybe_complete_join(now_ms, out)
            return E.NONE
        if member_id not in self.members:
            return E.UNKNOWN_MEMBER_ID
        self._remove_and_rebalance(member_id, now_ms, out)
        return E.NONE

    def check_commit(self, *, member_id: str, generation: int, now_ms: int) -> E:
        """Whether an OffsetCommit from ``member_id`` at ``generation`` may be stored."""
        if self.state is S.DEAD:
            return E.COORDINATOR_NOT_AVAILABLE
        if generation < 0 and self.state is S.EMPTY:
            return E.NONE  # a standalone consumer using Kafka only to store offsets
        member = self.members.get(member_id)
        error = self._check_member(member, generation)
        if error is not E.NONE or member is None:
            return error
        if self.state is S.COMPLETING_REBALANCE:
            return E.REBALANCE_IN_PROGRESS
        # Stable, or PreparingRebalance: the heartbeat will tell it to rejoin.
        member.heard_from(now_ms)
        return E.NONE

    # -- time and durability ----------------------------------------------------

    def next_deadline(self) -> int | None:
        times = list(self.pending.values())
        times += [m.deadline_ms for m in self.members.values() if not m.awaiting]
        if self.state is S.PREPARING_REBALANCE and self.join_deadline_ms is not None:
            times.append(self.join_deadline_ms)
        return min(times, default=None)

    def tick(self, now_ms: int, out: list[Effect]) -> None:
        for member_id, expiry in list(self.pending.items()):
            if now_ms >= expiry:
                del self.pending[member_id]
        for member in list(self.members.values()):
            # A removal can complete a join, which drops laggards: check membership.
            if member.member_id in self.members and member.expired(now_ms):
                self._remove_and_rebalance(member.member_id, now_ms, out)
        self._maybe_complete_join(now_ms, out)
        while self.state is S.PREPARING_REBALANCE:
            deadline = self.join_deadline_ms
            if deadline is None or now_ms < deadline:
                return
            remaining = self.initial_remaining_ms
            if remaining is None or not self.new_member_added or remaining == 0:
                self._complete_join(now_ms, out)
                return
            # The initial delay ends while members keep arriving: wait one more delay
            # (counted from the deadline, not from a late tick), up to the rebalance timeout.
            delay = self.config.initial_rebalance_delay_ms
            self.join_deadline_ms = deadline + min(delay, remaining)
            self.initial_remaining_ms = max(remaining - delay, 0)
            self.new_member_added = False

    def on_stored(self, *, generation: int, error: int, now_ms: int, out: list[Effect]) -> None:
        """The leader's assignment for ``generation`` is durable (error 0) or failed."""
        if self.state is not S.COMPLETING_REBALANCE or generation != self.generation:
            return  # the group moved on; those syncs were answered already
        proposed, self.proposed = self.proposed, None
        if proposed is None:
            return
        if error != E.NONE:
            for m in self.members.values():
                if m.sync_request is not None:
                    out.append(SyncReply(request_id=m.sync_request, error=error))
                    m.sync_request = None
            self._prepare_rebalance(now_ms, out)
            return
        self._transition(S.STABLE)
        for m in self.members.values():
            m.assignment = proposed.get(m.member_id, b"")
            if m.sync_request is not None:
                out.append(
                    SyncReply(request_id=m.sync_request, error=E.NONE, assignment=m.assignment)
                )
                m.sync_request = None
                m.heard_from(now_ms)

    def kill(self, error: E, out: list[Effect]) -> None:
        """Dead: the coordinator no longer owns this group; answer every waiting request."""
        for m in self.members.values():
            if m.join_request is not None:
                out.append(JoinReply(request_id=m.join_request, error=error))
            if m.sync_request is not None:
                out.append(SyncReply(request_id=m.sync_request, error=error))
            m.join_request = m.sync_request = None
        self._transition(S.DEAD)

    # -- internals --------------------------------------------------------------

    def _transition(self, to: GroupState) -> None:
        if self.state not in _VALID_PREVIOUS[to]:
            raise AssertionError(
                f"group {self.group_id!r}: illegal {self.state.value} -> {to.value}"
            )
        self.state = to

    def _supports(self, protocol_type: str, names: list[str]) -> bool:
        if not protocol_type or not names:
            return False
        if self.state is S.EMPTY or not self.members:
            return True
        candidates = candidate_protocols(self.members.values())
        return protocol_type == self.protocol_type and any(n in candidates for n in names)

    def _check_member(self, member: Member | None, generation: int) -> E:
        if self.state is S.DEAD:
            return E.COORDINATOR_NOT_AVAILABLE
        if member is None or self.state is S.EMPTY:
            return E.UNKNOWN_MEMBER_ID
        if generation != self.generation:
            return E.ILLEGAL_GENERATION
        return E.NONE

    def _join_reply(self, request_id: int, member: Member) -> JoinReply:
        is_leader = member.member_id == self.leader
        members = tuple(
            JoinMember(member_id=m.member_id, metadata=m.metadata_for(self.protocol))
            for m in self.members.values()
        )
        return JoinReply(
            request_id=request_id,
            error=E.NONE,
            generation_id=self.generation,
            protocol_name=self.protocol or "",
            leader=self.leader or "",
            member_id=member.member_id,
            members=members if is_leader else (),
        )

    def _remove_and_rebalance(self, member_id: str, now_ms: int, out: list[Effect]) -> None:
        self._remove(member_id, out)
        self._maybe_prepare_rebalance(now_ms, out)
        self._maybe_complete_join(now_ms, out)

    def _remove(self, member_id: str, out: list[Effect]) -> None:
        member = self.members.pop(member_id)
        if member.join_request is not None:
            out.append(JoinReply(request_id=member.join_request, error=E.UNKNOWN_MEMBER_ID))
        if member.sync_request is not None:
            out.append(SyncReply(request_id=member.sync_request, error=E.UNKNOWN_MEMBER_ID))
        if self.leader == member_id:
            self.leader = next(iter(self.members), None)

    def _maybe_prepare_rebalance(self, now_ms: int, out: list[Effect]) -> None:
        if self.state in (S.EMPTY, S.STABLE, S.COMPLETING_REBALANCE):
            self._prepare_rebalance(now_ms, out)

    def _prepare_rebalance(self, now_ms: int, out: list[Effect]) -> None:
        for m in self.members.values():
            if m.sync_request is not None:
                out.append(SyncReply(request_id=m.sync_request, error=E.REBALANCE_IN_PROGRESS))
                m.sync_request = None
            m.assignment = None  # the generation ends: no assignment stays live
        self.proposed = None
        timeout = max((m.rebalance_timeout_ms for m in self.members.values()), default=0)
        delay = self.config.initial_rebalance_delay_ms
        if self.state is S.EMPTY and delay > 0:
            self.join_deadline_ms = now_ms + delay
            self.initial_remaining_ms = max(timeout - delay, 0)
            self.new_member_added = False
        else:
            self.join_deadline_ms = now_ms + timeout
            self.initial_remaining_ms = None
        self._transition(S.PREPARING_REBALANCE)

    def _maybe_complete_join(self, now_ms: int, out: list[Effect]) -> None:
        if self.state is not S.PREPARING_REBALANCE or self.initial_remaining_ms is not None:
            return
        if not self.pending and all(m.join_request is not None for m in self.members.values()):
            self._complete_join(now_ms, out)

    def _complete_join(self, now_ms: int, out: list[Effect]) -> None:
        for m in list(self.members.values()):
            if m.join_request is None:  # a laggard: it did not rejoin in time
                self._remove(m.member_id, out)
        self.join_deadline_ms = self.initial_remaining_ms = None
        self.new_member_added = False
        self.generation += 1
        if not self.members:
            self.protocol = self.leader = None
            self._transition(S.EMPTY)
            out.append(
                StoreGroup(group_id=self.group_id, generation=self.generation, assignments={})
            )
            return
        self.protocol = select_protocol(self.members.values())
        self._transition(S.COMPLETING_REBALANCE)
        for m in self.members.values():
            assert m.join_request is not None
            out.append(self._join_reply(m.join_request, m))
            m.join_request = None
            m.heard_from(now_ms)
