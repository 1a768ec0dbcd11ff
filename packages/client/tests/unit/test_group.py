"""The membership state machine over scripted coordinator answers, with a fake clock."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from rift_client import errors
from rift_client._group_wire import (
    Subscription,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
)
from rift_client.assignor import decode_sticky_user_data
from rift_client.group import (
    Assigned,
    HeartbeatRequest,
    JoinRequest,
    JoinResult,
    LeaveRequest,
    Membership,
    Revoked,
    State,
    SyncRequest,
    SyncResult,
)
from rift_client.types import TopicPartition


def tp(topic: str, partition: int) -> TopicPartition:
    return TopicPartition(topic=topic, partition=partition)


def member(**kw: float) -> Membership:
    settings_ = {"session_timeout": 10.0, "heartbeat_interval": 1.0, "retry_backoff": 0.5}
    settings_.update(kw)
    m = Membership("g", **settings_)  # type: ignore[arg-type]
    m.coordinator_found()
    return m


def meta(*topics: str, owned: tuple[TopicPartition, ...] = ()) -> bytes:
    return encode_subscription(Subscription(topics=topics, owned=owned))


def join_ok(m: Membership, now: float, *, leader: str = "m1", generation: int = 1) -> None:
    request = m.next_request(now)
    assert isinstance(request, JoinRequest)
    m.on_join(
        JoinResult(
            error=0,
            generation=generation,
            protocol="sticky",
            leader=leader,
            member_id="m1",
            members=(("m1", meta("t")), ("m2", meta("t"))) if leader == "m1" else (),
        ),
        now,
    )


def to_stable(m: Membership, now: float, partitions: tuple[TopicPartition, ...]) -> None:
    join_ok(m, now, leader="other")
    request = m.next_request(now)
    assert isinstance(request, SyncRequest)
    assert request.assignments == {}
    m.on_sync(SyncResult(error=0, assignment=encode_assignment(partitions)), now)
    assert m.state is State.STABLE


def test_leader_walks_join_member_id_required_assign_sync() -> None:
    m = member()
    m.subscribe(["t"], 0.0)
    first = m.next_request(0.0)
    assert isinstance(first, JoinRequest)
    assert first.member_id == ""
    assert [name for name, _ in first.protocols] == ["sticky", "range"]
    assert decode_subscription(first.protocols[0][1]).topics == ("t",)
    assert m.next_request(0.0) is None  # one request in flight
    m.on_join(JoinResult(error=79, member_id="m1"), 0.0)  # MEMBER_ID_REQUIRED
    second = m.next_request(0.0)
    assert isinstance(second, JoinRequest)
    assert second.member_id == "m1"
    m.on_join(
        JoinResult(
            error=0,
            generation=3,
            protocol="sticky",
            leader="m1",
            member_id="m1",
            members=(("m1", meta("t")), ("m2", meta("t"))),
        ),
        0.0,
    )
    assert m.state is State.ASSIGNING
    assert m.is_leader
    assert m.topics_to_assign() == {"t"}
    assert m.next_request(0.0) is None
    m.assign({"t": 4}, 0.0)
    sync = m.next_request(0.0)
    assert isinstance(sync, SyncRequest)
    assert sync.generation == 3
    plan = {mid: decode_assignment(a) for mid, a in sync.assignments.items()}
    assert sorted(len(v) for v in plan.values()) == [2, 2]
    m.on_sync(SyncResult(error=0, assignment=sync.assignments["m1"]), 0.5)
    assert m.state is State.STABLE
    assert m.take_events() == [Assigned(partitions=frozenset(plan["m1"]), generation=3)]
    assert m.assignment == frozenset(plan["m1"])


def test_heartbeats_follow_the_interval() -> None:
    m = member()
    m.subscribe(["t"], 0.0)
    to_stable(m, 10.0, (tp("t", 0),))
    assert m.next_request(10.0) is None
    assert m.next_deadline(10.0) == 11.0
    beat = m.next_request(11.0)
    assert beat == HeartbeatRequest(generation=1, member_id="m1")
    assert m.next_deadline(11.0) is None  # waiting for the answer
    m.on_heartbeat(0, 11.2)
    assert m.next_request(11.5) is None
    assert isinstance(m.next_request(12.2), HeartbeatRequest)


@pytest.mark.parametrize(
    ("code", "member_id"),
    [(27, "m1"), (22, "m1"), (25, "")],  # REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION, UNKNOWN
)
def test_generation_errors_revoke_and_rejoin(code: int, member_id: str) -> None:
    m = member()
    m.subscribe(["t"], 0.0)
    to_stable(m, 0.0, (tp("t", 0), tp("t", 1)))
    m.take_events()
    assert isinstance(m.next_request(1.0), HeartbeatRequest)
    m.on_heartbeat(code, 1.0)
    assert m.state is State.JOINING
    assert m.take_events() == [Revoked(partitions=frozenset({tp("t", 0), tp("t", 1)}))]
    assert m.assignment == frozenset()
    rejoin = m.next_request(1.0)
    assert isinstance(rejoin, JoinRequest)
    assert rejoin.member_id == member_id
    # the sticky protocol carries what we owned, in Kafka's StickyAssignor format
    sub = decode_subscription(rejoin.protocols[0][1])
    assert decode_sticky_user_data(sub.user_data) == ((tp("t", 0), tp("t", 1)), 1)
    assert sub.owned == (tp("t", 0), tp("t", 1))


def test_commit_errors_make_a_stable_member_rejoin() -> None:
    m = member()
    m.subscribe(["t"], 0.0)
    to_stable(m, 0.0, (tp("t", 0),))
    m.on_commit_error(22, 0.2)
    assert m.state is State.JOINING


def test_sync_rebalance_in_progress_rejoins() -> None:
    m = member()
    m.subscribe(["t"], 0.0)
    join_ok(m, 0.0, leader="other")
    assert isinstance(m.next_request(0.0), SyncRequest)
    m.on_sync(SyncResult(error=27), 0.0)
    assert m.state is State.JOINING
    assert isinstance(m.next_request(0.0), JoinRequest)


def test_no_heartbeat_answers_for_a_session_means_expired() -> None:
    m = member()
    m.subscribe(["t"], 0.0)
    to_stable(m, 0.0, (tp("t", 0),))
    m.take_events()
    now = 1.0
    while now < 10.0:
        request = m.next_request(now)
        if isinstance(request, HeartbeatRequest):
            m.on_failure(errors.ClientTimeout("lost"), now)
            assert m.coordinator_needed
            assert m.next_request(now) is None  # find the coordinator first
            m.coordinator_found()
            assert m.state is State.STABLE
        now += 0.5
    assert m.next_deadline(now) == 10.0
    request = m.next_request(10.0)
    assert isinstance(request, JoinRequest)
    assert m.take_events() == [Revoked(partitions=frozenset({tp("t", 0)}))]


def test_coordinator_errors_back_off_and_retry() -> None:
    m = member()
    m.subscribe(["t"], 0.0)
    assert isinstance(m.next_request(0.0), JoinRequest)
    m.on_join(JoinResult(error=16), 0.0)  # NOT_COORDINATOR
    assert m.coordinator_needed
    m.coordinator_found()
    assert m.next_request(0.2) is None
    assert m.next_deadline(0.2) == 0.5
    assert isinstance(m.next_request(0.5), JoinRequest)


def test_fatal_errors_fail_the_membership() -> None:
    m = member()
    m.subscribe(["t"], 0.0)
    m.next_request(0.0)
    m.on_join(JoinResult(error=23), 0.0)  # INCONSISTENT_GROUP_PROTOCOL
    assert m.state is State.FAILED
    assert isinstance(m.error, errors.KafkaError)
    assert m.error.code == 23
    assert m.next_request(5.0) is None
    with pytest.raises(errors.InvalidArgument):
        m.subscribe(["u"], 5.0)


def test_unknown_protocol_chosen_fails() -> None:
    m = member()
    m.subscribe(["t"], 0.0)
    m.next_request(0.0)
    m.on_join(
        JoinResult(error=0, generation=1, protocol="roundrobin", leader="m1", member_id="m1"), 0.0
    )
    m.assign({"t": 1}, 0.0)
    assert m.state is State.FAILED


def test_leave_sends_the_member_id_and_revokes() -> None:
    m = member()
    assert m.leave() is None  # never joined: nothing to send
    m = member()
    m.subscribe(["t"], 0.0)
    to_stable(m, 0.0, (tp("t", 0),))
    m.take_events()
    assert m.leave() == LeaveRequest(member_id="m1")
    assert m.state is State.LEFT
    assert m.take_events() == [Revoked(partitions=frozenset({tp("t", 0)}))]
    assert m.next_request(100.0) is None


def test_changing_the_subscription_rejoins_and_filters_foreign_partitions() -> None:
    m = member()
    m.subscribe(["t"], 0.0)
    to_stable(m, 0.0, (tp("t", 0), tp("x", 0)))
    assert m.assignment == {tp("t", 0)}  # not subscribed to x
    m.subscribe(["t"], 0.5)
    assert m.state is State.STABLE  # unchanged subscription: nothing to do
    m.subscribe(["t", "u"], 0.5)
    assert m.state is State.JOINING


def test_bad_settings_are_rejected() -> None:
    with pytest.raises(errors.InvalidArgument):
        Membership("", session_timeout=10, heartbeat_interval=1)
    with pytest.raises(errors.InvalidArgument):
        Membership("g", session_timeout=1, heartbeat_interval=2)
    with pytest.raises(errors.InvalidArgument):
        Membership("g", assignors=("roundrobin",))


CODES = st.sampled_from([0, 0, 0, 14, 15, 16, 22, 25, 27, 79])


class MembershipMachine(RuleBasedStateMachine):
    """Random answers and time: requests never overlap, heartbeats only when stable,
    and assignments alternate with revocations (eager rebalancing)."""

    def __init__(self) -> None:
        super().__init__()
        self.m = member()
        self.now = 0.0
        self.m.subscribe(["t"], self.now)
        self.in_flight: object | None = None
        self.held: frozenset[TopicPartition] = frozenset()

    @rule(dt=st.floats(0, 3))
    def tick(self, dt: float) -> None:
        self.now += dt
        if self.m.coordinator_needed:
            self.m.coordinator_found()
        if self.in_flight is None:
            self.in_flight = self.m.next_request(self.now)
            if isinstance(self.in_flight, HeartbeatRequest):
                assert self.m.state is State.STABLE
        if self.m.state is State.ASSIGNING:
            self.m.assign({"t": 3}, self.now)
        self._events()

    @rule(code=CODES, partitions=st.sets(st.integers(0, 2)))
    def answer(self, code: int, partitions: set[int]) -> None:
        request, self.in_flight = self.in_flight, None
        if isinstance(request, JoinRequest):
            leader = "m1" if partitions else "other"
            self.m.on_join(
                JoinResult(
                    error=code,
                    generation=7,
                    protocol="sticky",
                    leader=leader,
                    member_id="m1",
                    members=(("m1", meta("t")),),
                ),
                self.now,
            )
        elif isinstance(request, SyncRequest):
            assignment = encode_assignment(tp("t", p) for p in partitions)
            self.m.on_sync(SyncResult(error=code, assignment=assignment), self.now)
        elif isinstance(request, HeartbeatRequest):
            self.m.on_heartbeat(code, self.now)
        self._events()

    @rule()
    def lose(self) -> None:
        if self.in_flight is not None:
            self.in_flight = None
            self.m.on_failure(errors.ClientTimeout("lost"), self.now)
            self._events()

    def _events(self) -> None:
        for event in self.m.take_events():
            if isinstance(event, Assigned):
                assert not self.held, "assigned twice without a revocation"
                self.held = event.partitions
            else:
                assert event.partitions == self.held
                self.held = frozenset()

    @invariant()
    def assignment_only_when_stable(self) -> None:
        if self.m.state is not State.STABLE:
            assert self.m.assignment == frozenset()
        assert self.m.assignment == self.held

    @invariant()
    def one_request_at_a_time(self) -> None:
        if self.in_flight is not None:
            assert self.m.next_request(self.now) is None


TestMembershipMachine = MembershipMachine.TestCase
TestMembershipMachine.settings = settings(max_examples=100, stateful_step_count=40, deadline=None)
