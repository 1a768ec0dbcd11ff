"""The Controller object: activation, registration, heartbeats and fencing,
topic creation, ISR changes — alone, then over a simulated Raft quorum."""

from __future__ import annotations

from typing import TypeVar

import pytest

from rift_broker.controller import (
    NO_LEADER,
    AlterPartitionRequest,
    Controller,
    ControllerConfig,
    CreateTopicRequest,
    Decision,
    ErrorCode,
    FenceBroker,
    HeartbeatRequest,
    RegisterRequest,
    encode_record,
)
from rift_broker.raft import NOOP

SESSION = 1_000
R = TypeVar("R")


def commit(controller: Controller, decision: Decision[R]) -> R:
    """Stand-in for Raft: every proposed record commits at once, in order."""
    for record in decision.records:
        controller.apply(controller.image.applied_index + 1, encode_record(record))
    return decision.reply


def active_controller(*, unclean: bool = False, brokers: int = 3) -> Controller:
    config = ControllerConfig(session_timeout_ms=SESSION, unclean_leader_election=unclean)
    controller = Controller(1, config=config)
    controller.apply(1, NOOP)
    controller.on_leadership(is_leader=True, term=1, log_end=1, now_ms=0)
    assert controller.active
    for b in range(1, brokers + 1):
        reply = commit(
            controller,
            controller.register(
                RegisterRequest(broker=b, incarnation="a", host="h", port=9000 + b), 0
            ),
        )
        commit(
            controller,
            controller.heartbeat(HeartbeatRequest(broker=b, broker_epoch=reply.broker_epoch), 0),
        )
    assert controller.image.live_brokers() == set(range(1, brokers + 1))
    return controller


def heartbeat_all(
    controller: Controller, now_ms: int, *, except_: frozenset[int] = frozenset()
) -> None:
    for broker in controller.image.brokers.values():
        if broker.broker not in except_:
            commit(
                controller,
                controller.heartbeat(
                    HeartbeatRequest(broker=broker.broker, broker_epoch=broker.epoch), now_ms
                ),
            )


def test_standby_and_pending_controllers_refuse_requests() -> None:
    controller = Controller(1)
    request = RegisterRequest(broker=1, incarnation="a", host="h", port=1)
    assert controller.register(request, 0).reply.error is ErrorCode.NOT_CONTROLLER
    controller.on_leadership(is_leader=True, term=3, log_end=5, now_ms=0)
    assert not controller.active  # pending: its log holds entries it has not applied
    for index in range(1, 5):
        controller.apply(index, NOOP)
    assert controller.register(request, 0).reply.error is ErrorCode.NOT_CONTROLLER
    controller.apply(5, NOOP)
    assert controller.register(request, 0).reply.error is ErrorCode.NONE
    controller.on_leadership(is_leader=False, term=3, log_end=5, now_ms=0)
    assert not controller.active
    assert controller.tick(0).records == ()


def test_registration_is_idempotent_per_incarnation_and_fences_a_restart() -> None:
    controller = active_controller()
    again = controller.register(RegisterRequest(broker=2, incarnation="a", host="h", port=9002), 10)
    assert again.records == ()
    commit(
        controller,
        controller.create_topic(
            CreateTopicRequest(topic="t", partitions=3, replication_factor=3), 10
        ),
    )
    old_epoch = controller.image.brokers[2].epoch
    restarted = controller.register(
        RegisterRequest(broker=2, incarnation="b", host="h", port=9002), 20
    )
    commit(controller, restarted)
    assert restarted.reply.broker_epoch > old_epoch
    assert controller.image.brokers[2].fenced
    for p in controller.image.partitions_of("t"):
        assert 2 not in p.isr
        assert p.leader != 2
    # Heartbeats with the old epoch are refused; the new one unfences it.
    stale = controller.heartbeat(HeartbeatRequest(broker=2, broker_epoch=old_epoch), 30)
    assert stale.reply.error is ErrorCode.STALE_BROKER_EPOCH
    fresh = controller.heartbeat(
        HeartbeatRequest(broker=2, broker_epoch=restarted.reply.broker_epoch), 30
    )
    commit(controller, fresh)
    assert not fresh.reply.fenced
    unknown = controller.heartbeat(HeartbeatRequest(broker=9, broker_epoch=1), 30)
    assert unknown.reply.error is ErrorCode.BROKER_ID_NOT_REGISTERED


def test_create_topic_places_replicas_round_robin() -> None:
    controller = active_controller()
    reply = commit(
        controller,
        controller.create_topic(
            CreateTopicRequest(
                topic="t",
                partitions=3,
                replication_factor=2,
                configs=(("min.insync.replicas", "2"),),
            ),
            0,
        ),
    )
    assert reply.error is ErrorCode.NONE
    parts = controller.image.partitions_of("t")
    assert [p.leader for p in parts] == [1, 2, 3]
    assert all(p.isr == p.replicas and len(p.replicas) == 2 for p in parts)
    assert controller.image.topics["t"].configs == (("min.insync.replicas", "2"),)


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        (
            CreateTopicRequest(topic="t", partitions=1, replication_factor=1),
            ErrorCode.TOPIC_ALREADY_EXISTS,
        ),
        (
            CreateTopicRequest(topic="bad name", partitions=1, replication_factor=1),
            ErrorCode.INVALID_TOPIC_EXCEPTION,
        ),
        (
            CreateTopicRequest(topic="..", partitions=1, replication_factor=1),
            ErrorCode.INVALID_TOPIC_EXCEPTION,
        ),
        (
            CreateTopicRequest(topic="u", partitions=0, replication_factor=1),
            ErrorCode.INVALID_PARTITIONS,
        ),
        (
            CreateTopicRequest(topic="u", partitions=1, replication_factor=4),
            ErrorCode.INVALID_REPLICATION_FACTOR,
        ),
    ],
)
def test_create_topic_errors(request_: CreateTopicRequest, error: ErrorCode) -> None:
    controller = active_controller()
    commit(
        controller,
        controller.create_topic(
            CreateTopicRequest(topic="t", partitions=1, replication_factor=1), 0
        ),
    )
    decision = controller.create_topic(request_, 0)
    assert decision.reply.error is error
    assert decision.records == ()


def test_lapsed_heartbeats_fence_the_broker_and_move_leadership() -> None:
    controller = active_controller()
    commit(
        controller,
        controller.create_topic(
            CreateTopicRequest(topic="t", partitions=3, replication_factor=3), 0
        ),
    )
    before = {p.partition: p for p in controller.image.partitions_of("t")}
    heartbeat_all(controller, 600, except_=frozenset({1}))
    assert commit(controller, controller.tick(999)) is None
    assert controller.image.live_brokers() == {1, 2, 3}
    decision = controller.tick(1_000)  # broker 1's last heartbeat was at 0
    assert decision.records[0] == FenceBroker(broker=1, epoch=controller.image.brokers[1].epoch)
    commit(controller, decision)
    assert controller.image.live_brokers() == {2, 3}
    for p in controller.image.partitions_of("t"):
        old = before[p.partition]
        assert 1 not in p.isr
        assert p.leader != 1
        assert p.partition_epoch == old.partition_epoch + 1
        assert p.leader_epoch == old.leader_epoch + (1 if old.leader == 1 else 0)
    assert controller.tick(1_001).records == ()  # fenced once, not on every tick


def test_a_stale_leaders_isr_change_is_rejected() -> None:
    controller = active_controller()
    commit(
        controller,
        controller.create_topic(
            CreateTopicRequest(topic="t", partitions=1, replication_factor=3), 0
        ),
    )
    p = controller.image.partitions_of("t")[0]
    epoch1 = controller.image.brokers[1].epoch
    shrink = AlterPartitionRequest(
        broker=1,
        broker_epoch=epoch1,
        topic="t",
        partition=0,
        leader_epoch=p.leader_epoch,
        partition_epoch=p.partition_epoch,
        isr=(1, 2),
    )
    accepted = controller.alter_partition(shrink, 10)
    commit(controller, accepted)
    assert accepted.reply.error is ErrorCode.NONE
    assert controller.image.partitions_of("t")[0].isr == (1, 2)
    # The same request again is stale: the partition epoch moved on.
    assert controller.alter_partition(shrink, 11).reply.error is ErrorCode.INVALID_UPDATE_VERSION
    # Broker 1 lapses; broker 2 leads at a new leader epoch; 1's change is fenced.
    heartbeat_all(controller, 900, except_=frozenset({1}))
    commit(controller, controller.tick(1_000))
    current = controller.image.partitions_of("t")[0]
    assert current.leader == 2
    late = AlterPartitionRequest(
        broker=1,
        broker_epoch=epoch1,
        topic="t",
        partition=0,
        leader_epoch=p.leader_epoch,
        partition_epoch=current.partition_epoch,
        isr=(1,),
    )
    assert controller.alter_partition(late, 1_001).reply.error is ErrorCode.FENCED_LEADER_EPOCH


@pytest.mark.parametrize("unclean", [False, True])
def test_unclean_election_only_when_configured(unclean: bool) -> None:
    controller = active_controller(unclean=unclean)
    commit(
        controller,
        controller.create_topic(
            CreateTopicRequest(topic="t", partitions=1, replication_factor=2), 0
        ),
    )
    p = controller.image.partitions_of("t")[0]
    leader, follower = p.replicas
    epoch = controller.image.brokers[leader].epoch
    commit(
        controller,
        controller.alter_partition(
            AlterPartitionRequest(
                broker=leader,
                broker_epoch=epoch,
                topic="t",
                partition=0,
                leader_epoch=p.leader_epoch,
                partition_epoch=p.partition_epoch,
                isr=(leader,),
            ),
            10,
        ),
    )
    heartbeat_all(controller, 900, except_=frozenset({leader}))
    commit(controller, controller.tick(1_000))
    after = controller.image.partitions_of("t")[0]
    if unclean:
        assert (after.leader, after.isr) == (follower, (follower,))
    else:
        assert (after.leader, after.isr) == (NO_LEADER, (leader,))
        # The ISR member comes back: it is elected cleanly.
        commit(
            controller,
            controller.heartbeat(HeartbeatRequest(broker=leader, broker_epoch=epoch), 1_100),
        )
        back = controller.image.partitions_of("t")[0]
        assert back.leader == leader
        assert back.leader_epoch == after.leader_epoch + 1


def test_activation_gives_every_broker_a_fresh_session() -> None:
    controller = active_controller()
    controller.on_leadership(is_leader=False, term=1, log_end=0, now_ms=5_000)
    end = controller.image.applied_index
    controller.on_leadership(is_leader=True, term=2, log_end=end, now_ms=5_000)
    assert controller.tick(5_999).records == ()
    assert len([r for r in controller.tick(6_000).records if isinstance(r, FenceBroker)]) == 3


def test_restore_replaces_the_image() -> None:
    controller = active_controller()
    data = controller.snapshot()
    other = Controller(2)
    other.restore(data)
    assert other.image == controller.image
    assert not other.active
