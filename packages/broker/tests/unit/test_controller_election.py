"""The controller's pure decisions, as tables: elections, fencing, ISR changes,
placement and heartbeat sessions."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rift_broker.controller import (
    NO_LEADER,
    AlterPartitionRequest,
    BrokerSessions,
    ErrorCode,
    PartitionChange,
    PartitionInfo,
    alter_partition,
    choose_leader,
    elect,
    needs_election,
    place_replicas,
    remove_from_isr,
)


def part(
    replicas: tuple[int, ...] = (1, 2, 3),
    isr: tuple[int, ...] = (1, 2, 3),
    leader: int = 1,
    leader_epoch: int = 5,
    partition_epoch: int = 9,
) -> PartitionInfo:
    return PartitionInfo(
        topic="t",
        partition=0,
        replicas=replicas,
        isr=isr,
        leader=leader,
        leader_epoch=leader_epoch,
        partition_epoch=partition_epoch,
    )


@pytest.mark.parametrize(
    ("leader", "live", "expected"),
    [
        (1, {1, 2, 3}, False),
        (1, {2, 3}, True),  # leader fenced / offline
        (NO_LEADER, {1, 2, 3}, True),
        (NO_LEADER, set(), True),
    ],
)
def test_needs_election(leader: int, live: set[int], expected: bool) -> None:
    assert needs_election(part(leader=leader), live) is expected


@pytest.mark.parametrize(
    ("replicas", "isr", "live", "unclean", "expected"),
    [
        # first live ISR member in *assignment* order, not ISR order
        ((3, 1, 2), (1, 2, 3), {1, 2, 3}, False, (3, True)),
        ((3, 1, 2), (2, 1), {1, 2, 3}, False, (1, True)),
        ((1, 2, 3), (1, 2, 3), {2, 3}, False, (2, True)),
        ((1, 2, 3), (1, 3), {2, 3}, False, (3, True)),
        # no live ISR member: leaderless unless unclean election is on
        ((1, 2, 3), (1,), {2, 3}, False, None),
        ((1, 2, 3), (1,), {2, 3}, True, (2, False)),
        ((1, 2, 3), (1,), {3}, True, (3, False)),
        # unclean still prefers a clean candidate
        ((1, 2, 3), (1, 3), {2, 3}, True, (3, True)),
        ((1, 2, 3), (1, 2, 3), set(), True, None),
        # a live broker that is not a replica never leads
        ((1, 2), (1, 2), {3}, True, None),
    ],
)
def test_choose_leader(
    replicas: tuple[int, ...],
    isr: tuple[int, ...],
    live: set[int],
    unclean: bool,
    expected: tuple[int, bool] | None,
) -> None:
    assert choose_leader(part(replicas=replicas, isr=isr), live, unclean=unclean) == expected


def test_elect_bumps_both_epochs_and_drops_dead_isr_members() -> None:
    change = elect(part(isr=(1, 2, 3)), {2, 3})
    assert change == PartitionChange(
        topic="t", partition=0, leader=2, leader_epoch=6, isr=(2, 3), partition_epoch=10
    )


def test_unclean_election_resets_the_isr_to_the_new_leader() -> None:
    change = elect(part(isr=(1,)), {2, 3}, unclean=True)
    assert change is not None
    assert (change.leader, change.isr, change.leader_epoch) == (2, (2,), 6)


def test_no_candidate_leaves_the_partition_leaderless_with_its_last_isr() -> None:
    change = elect(part(isr=(1,)), {2, 3})
    assert change is not None
    assert (change.leader, change.isr, change.leader_epoch) == (NO_LEADER, (1,), 6)
    leaderless = part(isr=(1,), leader=NO_LEADER, leader_epoch=6, partition_epoch=10)
    assert elect(leaderless, {2, 3}) is None  # nothing new to record
    back = elect(leaderless, {1, 2, 3})
    assert back is not None
    assert (back.leader, back.leader_epoch) == (1, 7)


def test_no_election_for_a_live_leader() -> None:
    assert elect(part(), {1, 2, 3}) is None


@pytest.mark.parametrize(
    ("fenced", "isr", "expected_leader", "expected_isr"),
    [
        (2, (1, 2, 3), 1, (1, 3)),  # a follower leaves the ISR
        (1, (1, 2, 3), 2, (2, 3)),  # the leader is replaced
        (3, (1, 2), None, None),  # not in the ISR: nothing changes
    ],
)
def test_remove_from_isr(
    fenced: int, isr: tuple[int, ...], expected_leader: int | None, expected_isr: tuple[int, ...]
) -> None:
    live = {1, 2, 3} - {fenced}
    change = remove_from_isr(part(isr=isr), fenced, live)
    if expected_leader is None:
        assert change is None
    else:
        assert change is not None
        assert (change.leader, change.isr) == (expected_leader, expected_isr)


def test_the_last_isr_member_stays_in_the_isr() -> None:
    only = part(replicas=(1, 2), isr=(2,), leader=2)
    change = remove_from_isr(only, 2, {1})
    assert change is not None
    assert (change.leader, change.isr) == (NO_LEADER, (2,))
    follower_only = part(replicas=(1, 2), isr=(1,), leader=1)
    assert remove_from_isr(follower_only, 2, {1}) is None


def request(**overrides: object) -> AlterPartitionRequest:
    fields: dict[str, object] = {
        "broker": 1,
        "broker_epoch": 7,
        "topic": "t",
        "partition": 0,
        "leader_epoch": 5,
        "partition_epoch": 9,
        "isr": (1, 2),
    }
    fields.update(overrides)
    return AlterPartitionRequest(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("req", "broker_epoch", "expected"),
    [
        (request(), 7, None),
        (request(leader_epoch=4), 7, ErrorCode.FENCED_LEADER_EPOCH),  # a stale leader
        (request(leader_epoch=6), 7, ErrorCode.UNKNOWN_LEADER_EPOCH),
        (request(partition_epoch=8), 7, ErrorCode.INVALID_UPDATE_VERSION),
        (request(broker=2), 7, ErrorCode.NOT_LEADER_OR_FOLLOWER),
        (request(broker_epoch=6), 7, ErrorCode.STALE_BROKER_EPOCH),
        (request(), None, ErrorCode.BROKER_ID_NOT_REGISTERED),
        (request(isr=(2, 3)), 7, ErrorCode.INVALID_REQUEST),  # leader not in its ISR
        (request(isr=(1, 4)), 7, ErrorCode.INVALID_REQUEST),  # not a replica
        (request(isr=(1, 1)), 7, ErrorCode.INVALID_REQUEST),
        (request(isr=(1, 2, 3)), 7, ErrorCode.INELIGIBLE_REPLICA),  # 3 is fenced
    ],
)
def test_alter_partition(
    req: AlterPartitionRequest, broker_epoch: int | None, expected: ErrorCode | None
) -> None:
    current = part(isr=(1,))
    result = alter_partition(current, req, broker_epoch=broker_epoch, live={1, 2})
    if expected is None:
        assert result == PartitionChange(
            topic="t", partition=0, leader=1, leader_epoch=5, isr=(1, 2), partition_epoch=10
        )
    else:
        assert result == expected


def test_alter_partition_of_an_unknown_partition() -> None:
    result = alter_partition(None, request(), broker_epoch=7, live={1})
    assert result == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


def test_shrinking_keeps_a_fenced_member_out_but_never_requires_liveness_to_stay() -> None:
    current = part(isr=(1, 2, 3))
    shrink = alter_partition(current, request(isr=(1, 3)), broker_epoch=7, live={1, 2})
    assert isinstance(shrink, PartitionChange)  # 3 was already in the ISR: may stay


@given(
    brokers=st.sets(st.integers(0, 50), min_size=1, max_size=12),
    partitions=st.integers(1, 60),
    data=st.data(),
)
def test_placement_is_balanced(brokers: set[int], partitions: int, data: st.DataObject) -> None:
    rf = data.draw(st.integers(1, len(brokers)))
    start = data.draw(st.integers(0, 100))
    assignment = place_replicas(brokers, partitions=partitions, replication_factor=rf, start=start)
    assert len(assignment) == partitions
    for replicas in assignment:
        assert len(set(replicas)) == rf
        assert set(replicas) <= brokers
    leaders = Counter(r[0] for r in assignment)
    replicas_held = Counter(b for r in assignment for b in r)
    assert max(leaders.values()) - min(leaders.get(b, 0) for b in brokers) <= 1
    assert max(replicas_held.values()) - min(replicas_held.get(b, 0) for b in brokers) <= 1


def test_placement_example_and_errors() -> None:
    assert place_replicas([3, 1, 2], partitions=4, replication_factor=2) == [
        (1, 3),
        (2, 1),
        (3, 2),
        (1, 3),
    ]
    with pytest.raises(ValueError, match="replication factor 4"):
        place_replicas([1, 2, 3], partitions=1, replication_factor=4)
    with pytest.raises(ValueError, match="at least one partition"):
        place_replicas([1], partitions=0, replication_factor=1)


def test_sessions_expire_after_the_timeout() -> None:
    sessions = BrokerSessions(session_timeout_ms=100)
    sessions.renew(1, now_ms=0)
    sessions.renew(2, now_ms=50)
    assert sessions.expired(99) == []
    assert sessions.expired(100) == [1]
    assert sessions.next_deadline() == 100
    sessions.renew(1, now_ms=120)
    assert sessions.expired(150) == [2]
    sessions.renew(1, now_ms=10)  # a late, reordered heartbeat never shortens a session
    assert sessions.expired(219) == [2]
    sessions.reset([1, 2], now_ms=300)
    assert sessions.expired(399) == []
    assert sessions.expired(400) == [1, 2]
    with pytest.raises(ValueError, match="positive"):
        BrokerSessions(session_timeout_ms=0)
