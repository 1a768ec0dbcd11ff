"""Consumer-group membership: the classic protocol as a sans-IO state machine.

Theory of operation. A member walks ``UNJOINED -> JOINING -> (ASSIGNING) -> SYNCING
-> STABLE`` and back to ``JOINING`` whenever the coordinator says the group is
rebalancing. The driver (the consumer's background task) asks
:meth:`Membership.next_request` what to send, sends it, and feeds the answer back
through ``on_join`` / ``on_sync`` / ``on_heartbeat`` (or :meth:`on_failure` when the
request got no answer). Time is an argument everywhere. At most one group request
is in flight.

=================  =============================  ==================================
state              sends                          on the answer
=================  =============================  ==================================
UNJOINED/JOINING   JoinGroup (member id may be    ok: leader -> ASSIGNING, else
                   empty)                         SYNCING; MEMBER_ID_REQUIRED: take
                                                  the id, join again; UNKNOWN_MEMBER
                                                  _ID: forget the id, join again
ASSIGNING          nothing: the driver fetches    :meth:`assign` computes the plan
                   metadata, calls assign()       -> SYNCING
SYNCING            SyncGroup (the leader's plan)  ok -> STABLE, ``Assigned`` event;
                                                  REBALANCE_IN_PROGRESS /
                                                  ILLEGAL_GENERATION -> JOINING
STABLE             Heartbeat every interval       REBALANCE_IN_PROGRESS /
                                                  ILLEGAL_GENERATION /
                                                  UNKNOWN_MEMBER_ID -> JOINING
any                LeaveGroup on leave()          -> LEFT
=================  =============================  ==================================

Rebalancing is eager: leaving STABLE revokes every partition (``Revoked`` event)
before the next JoinGroup, so two members never consume one partition in the same
generation. A STABLE member that has had no successful heartbeat for
``session_timeout`` assumes the coordinator expired it and revokes too.
Coordinator errors (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE) set
:attr:`Membership.coordinator_needed`; the driver finds the coordinator again and
the same request is retried after ``retry_backoff``. Errors that no retry can fix
(INCONSISTENT_GROUP_PROTOCOL, INVALID_SESSION_TIMEOUT, GROUP_AUTHORIZATION_FAILED,
...) move to FAILED and are kept in :attr:`Membership.error`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rift_client._group_wire import (
    Subscription,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
)
from rift_client.assignor import ASSIGNORS, Assignor, MemberSubscription, decode_sticky_user_data
from rift_client.errors import ClientError, InvalidArgument, KafkaError, for_code
from rift_client.types import TopicPartition

__all__ = [
    "State",
    "Membership",
    "JoinRequest",
    "SyncRequest",
    "HeartbeatRequest",
    "LeaveRequest",
    "JoinResult",
    "SyncResult",
    "Assigned",
    "Revoked",
]

COORDINATOR_LOAD_IN_PROGRESS = 14
COORDINATOR_NOT_AVAILABLE = 15
NOT_COORDINATOR = 16
ILLEGAL_GENERATION = 22
UNKNOWN_MEMBER_ID = 25
REBALANCE_IN_PROGRESS = 27
MEMBER_ID_REQUIRED = 79

_COORDINATOR_ERRORS = frozenset({COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR})
_REJOIN_ERRORS = frozenset({ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS})
# INCONSISTENT_GROUP_PROTOCOL, INVALID_GROUP_ID, INVALID_SESSION_TIMEOUT,
# GROUP_AUTHORIZATION_FAILED, UNSUPPORTED_VERSION, GROUP_MAX_SIZE_REACHED.
_FATAL_ERRORS = frozenset({23, 24, 26, 30, 35, 81})


class State(enum.Enum):
    UNJOINED = "unjoined"
    JOINING = "joining"
    ASSIGNING = "assigning"
    SYNCING = "syncing"
    STABLE = "stable"
    LEFT = "left"
    FAILED = "failed"


# --- what the machine asks the driver to send ----------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class JoinRequest:
    member_id: str
    protocols: tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncRequest:
    generation: int
    member_id: str
    assignments: Mapping[str, bytes]


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatRequest:
    generation: int
    member_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaveRequest:
    member_id: str


Request = JoinRequest | SyncRequest | HeartbeatRequest | LeaveRequest


# --- what the driver feeds back ------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class JoinResult:
    error: int
    generation: int = -1
    protocol: str = ""
    leader: str = ""
    member_id: str = ""
    members: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncResult:
    error: int
    assignment: bytes = b""


# --- events for the consumer ---------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Assigned:
    partitions: frozenset[TopicPartition]
    generation: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Revoked:
    partitions: frozenset[TopicPartition]


Event = Assigned | Revoked


class Membership:
    def __init__(
        self,
        group_id: str,
        *,
        assignors: Sequence[str] = ("sticky", "range"),
        session_timeout: float = 45.0,
        rebalance_timeout: float = 300.0,
        heartbeat_interval: float = 3.0,
        retry_backoff: float = 0.1,
    ) -> None:
        if not group_id:
            raise InvalidArgument("group_id must be a non-empty string")
        unknown = [a for a in assignors if a not in ASSIGNORS]
        if unknown or not assignors:
            raise InvalidArgument(f"assignors must be among {sorted(ASSIGNORS)}, got {unknown}")
        if not 0 < heartbeat_interval < session_timeout:
            raise InvalidArgument("need 0 < heartbeat_interval < session_timeout")
        self.group_id = group_id
        self.assignors: tuple[Assignor, ...] = tuple(ASSIGNORS[a] for a in assignors)
        self.session_timeout = session_timeout
        self.rebalance_timeout = rebalance_timeout
        self.heartbeat_interval = heartbeat_interval
        self.retry_backoff = retry_backoff

        self.state = State.UNJOINED
        self.topics: frozenset[str] = frozenset()
        self.member_id = ""
        self.generation = -1
        self.leader = ""
        self.protocol = ""
        self.assignment: frozenset[TopicPartition] = frozenset()
        self.error: ClientError | None = None
        self.coordinator_needed = True
        # Members' subscriptions, while we are the leader of a generation.
        self.members: tuple[MemberSubscription, ...] = ()
        # What we owned in the last generation we completed: sticky user data.
        self._owned: frozenset[TopicPartition] = frozenset()
        self._owned_generation = -1
        self._in_flight = False
        self._not_before = 0.0
        self._next_heartbeat = 0.0
        self._last_heartbeat_ok = 0.0
        self._plan: dict[str, bytes] = {}
        self._events: list[Event] = []

    # --- inputs from the application ---------------------------------------------

    def subscribe(self, topics: Sequence[str], now: float) -> None:
        """Set the subscription; a change makes the member (re)join."""
        wanted = frozenset(topics)
        if any(not t for t in wanted):
            raise InvalidArgument("topic names must be non-empty")
        if self.state in (State.LEFT, State.FAILED):
            raise InvalidArgument(f"the membership is {self.state.value}")
        if wanted == self.topics and self.state is not State.UNJOINED:
            return
        self.topics = wanted
        self._rejoin(now, backoff=False)

    def leave(self) -> LeaveRequest | None:
        """Stop membership; the LeaveGroup to send, if we ever got a member id."""
        request = LeaveRequest(member_id=self.member_id) if self.member_id else None
        self._revoke()
        self.state = State.LEFT
        return request

    def take_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    @property
    def is_leader(self) -> bool:
        return bool(self.member_id) and self.member_id == self.leader

    @property
    def stable(self) -> bool:
        return self.state is State.STABLE

    # --- what to send, and when --------------------------------------------------

    def next_request(self, now: float) -> Request | None:
        """The request to send now, or None (see :meth:`next_deadline`)."""
        if self._in_flight or self.coordinator_needed or now < self._not_before:
            return None
        if self.state is State.JOINING:
            self._in_flight = True
            return JoinRequest(member_id=self.member_id, protocols=self._protocols())
        if self.state is State.SYNCING:
            self._in_flight = True
            return SyncRequest(
                generation=self.generation, member_id=self.member_id, assignments=self._plan
            )
        if self.state is State.STABLE:
            if now - self._last_heartbeat_ok >= self.session_timeout:
                self._rejoin(now, backoff=False)  # we were surely expired
                return self.next_request(now)
            if now >= self._next_heartbeat:
                self._in_flight = True
                return HeartbeatRequest(generation=self.generation, member_id=self.member_id)
        return None

    def next_deadline(self, now: float) -> float | None:
        """When :meth:`next_request` may next have something (None: only after input)."""
        if self._in_flight or self.state in (State.LEFT, State.FAILED, State.ASSIGNING):
            return None
        if self.state is State.UNJOINED:
            return None
        if self.state is State.STABLE:
            return max(self._not_before, min(self._next_heartbeat, self._session_end()))
        return max(self._not_before, now)

    def _session_end(self) -> float:
        return self._last_heartbeat_ok + self.session_timeout

    def _protocols(self) -> tuple[tuple[str, bytes], ...]:
        topics = tuple(sorted(self.topics))
        owned = tuple(sorted(self._owned))
        return tuple(
            (
                a.name,
                encode_subscription(
                    Subscription(
                        topics=topics,
                        user_data=a.user_data(owned, self._owned_generation),
                        owned=owned,
                    )
                ),
            )
            for a in self.assignors
        )

    # --- answers -----------------------------------------------------------------

    def on_join(self, result: JoinResult, now: float) -> None:
        self._answered()
        if self.state is not State.JOINING:
            return  # left or failed meanwhile
        code = result.error
        if code == 0:
            self.member_id = result.member_id
            self.generation = result.generation
            self.leader = result.leader
            self.protocol = result.protocol
            if self.is_leader:
                self.members = tuple(
                    self._member(mid, metadata) for mid, metadata in result.members
                )
                self.state = State.ASSIGNING
            else:
                self._plan = {}
                self.state = State.SYNCING
            return
        if code == MEMBER_ID_REQUIRED:
            self.member_id = result.member_id
            return  # join again at once, with the id
        if code in (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION):
            self.member_id, self.generation = "", -1
            return
        if code == REBALANCE_IN_PROGRESS:
            return
        self._retry_or_fail(code, now, "join group")

    def topics_to_assign(self) -> frozenset[str]:
        """While ASSIGNING: the topics whose partition counts :meth:`assign` needs."""
        return frozenset(t for m in self.members for t in m.topics)

    def assign(self, partitions: Mapping[str, int], now: float) -> None:
        """While ASSIGNING: compute the plan from ``partitions`` (topic -> count)."""
        if self.state is not State.ASSIGNING:
            return
        assignor = next((a for a in self.assignors if a.name == self.protocol), None)
        if assignor is None:
            self._fail(for_code(23, f"the coordinator chose unknown protocol {self.protocol!r}"))
            return
        plan = assignor.assign(self.members, partitions)
        self._plan = {mid: encode_assignment(tps) for mid, tps in plan.items()}
        self.state = State.SYNCING

    def _member(self, member_id: str, metadata: bytes) -> MemberSubscription:
        sub = decode_subscription(metadata)
        owned, generation = decode_sticky_user_data(sub.user_data)
        if not owned and sub.owned:
            owned = sub.owned
        return MemberSubscription(
            member_id=member_id,
            topics=frozenset(sub.topics),
            owned=owned,
            generation=generation,
            user_data=sub.user_data,
        )

    def on_sync(self, result: SyncResult, now: float) -> None:
        self._answered()
        if self.state is not State.SYNCING:
            return
        code = result.error
        if code == 0:
            assigned = frozenset(
                tp for tp in decode_assignment(result.assignment) if tp.topic in self.topics
            )
            self.assignment = assigned
            self._owned, self._owned_generation = assigned, self.generation
            self.state = State.STABLE
            self._last_heartbeat_ok = now
            self._next_heartbeat = now + self.heartbeat_interval
            self._events.append(Assigned(partitions=assigned, generation=self.generation))
            return
        if code in _REJOIN_ERRORS:
            if code == UNKNOWN_MEMBER_ID:
                self.member_id = ""
            self._rejoin(now, backoff=False)
            return
        self._retry_or_fail(code, now, "sync group", rejoin=True)

    def on_heartbeat(self, error: int, now: float) -> None:
        self._answered()
        if self.state is not State.STABLE:
            return
        if error == 0:
            self._last_heartbeat_ok = now
            self._next_heartbeat = now + self.heartbeat_interval
            return
        self._on_generation_error(error, now, "heartbeat")

    def on_commit_error(self, error: int, now: float) -> None:
        """A commit told us our generation or member id is stale: rejoin."""
        if self.state is State.STABLE and error in _REJOIN_ERRORS:
            self._on_generation_error(error, now, "commit")

    def _on_generation_error(self, error: int, now: float, what: str) -> None:
        if error in _REJOIN_ERRORS:
            if error == UNKNOWN_MEMBER_ID:
                self.member_id = ""
            self._rejoin(now, backoff=False)
            return
        if error in _COORDINATOR_ERRORS:
            self.coordinator_needed = True
            self._not_before = now + self.retry_backoff
            return
        if error in _FATAL_ERRORS:
            self._fail(for_code(error, what))
            return
        self._next_heartbeat = now + self.retry_backoff

    def on_failure(self, error: BaseException, now: float) -> None:
        """The in-flight request got no answer (timeout, connection lost)."""
        self._answered()
        self.coordinator_needed = True
        self._not_before = now + self.retry_backoff
        if self.state is State.SYNCING:
            self._rejoin(now, backoff=True)

    def coordinator_found(self) -> None:
        self.coordinator_needed = False

    # --- transitions -------------------------------------------------------------

    def _answered(self) -> None:
        self._in_flight = False

    def _retry_or_fail(self, code: int, now: float, what: str, *, rejoin: bool = False) -> None:
        if code in _FATAL_ERRORS:
            self._fail(for_code(code, what))
            return
        if code in _COORDINATOR_ERRORS:
            self.coordinator_needed = True
        if rejoin:
            self._rejoin(now, backoff=True)
        self._not_before = now + self.retry_backoff

    def _rejoin(self, now: float, *, backoff: bool) -> None:
        self._revoke()
        self.state = State.JOINING
        self.members = ()
        self._plan = {}
        if backoff:
            self._not_before = now + self.retry_backoff

    def _revoke(self) -> None:
        if self.assignment:
            self._events.append(Revoked(partitions=self.assignment))
        self.assignment = frozenset()

    def _fail(self, error: KafkaError) -> None:
        self._revoke()
        self.error = error
        self.state = State.FAILED
