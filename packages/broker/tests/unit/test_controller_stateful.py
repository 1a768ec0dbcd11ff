"""Hypothesis drives an active Controller with registrations, heartbeats, silent
brokers, topic creations, ISR changes (current and stale) and ticks; every
decision commits at once. Invariants hold after every step: leaders are live
ISR members (or absent), ISRs are non-empty subsets of the replicas, epochs
never go back, and the controller's view equals the committed image."""

from __future__ import annotations

from typing import TypeVar

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from rift_broker.controller import (
    NO_LEADER,
    AlterPartitionRequest,
    Controller,
    ControllerConfig,
    CreateTopicRequest,
    Decision,
    ErrorCode,
    HeartbeatRequest,
    RegisterRequest,
    encode_record,
)
from rift_broker.raft import NOOP

R = TypeVar("R")
BROKERS = st.integers(1, 3)


class ControllerMachine(RuleBasedStateMachine):
    @initialize(unclean=st.booleans())
    def start(self, unclean: bool) -> None:
        config = ControllerConfig(session_timeout_ms=1_000, unclean_leader_election=unclean)
        self.controller = Controller(1, config=config)
        self.controller.apply(1, NOOP)
        self.controller.on_leadership(is_leader=True, term=1, log_end=1, now_ms=0)
        self.unclean = unclean
        self.now = 0
        self.incarnations: dict[int, int] = {}
        self.epochs: dict[tuple[str, int], tuple[int, int]] = {}
        self.topics = 0

    def commit(self, decision: Decision[R]) -> R:
        for record in decision.records:
            index = self.controller.image.applied_index + 1
            self.controller.apply(index, encode_record(record))
        return decision.reply

    @rule(broker=BROKERS, restart=st.booleans())
    def register(self, broker: int, restart: bool) -> None:
        if restart or broker not in self.incarnations:
            self.incarnations[broker] = self.incarnations.get(broker, 0) + 1
        request = RegisterRequest(
            broker=broker, incarnation=str(self.incarnations[broker]), host="h", port=broker
        )
        reply = self.commit(self.controller.register(request, self.now))
        assert reply.error is ErrorCode.NONE
        assert reply.broker_epoch == self.controller.image.brokers[broker].epoch

    @rule(broker=BROKERS, unfence=st.booleans())
    def heartbeat(self, broker: int, unfence: bool) -> None:
        info = self.controller.image.brokers.get(broker)
        epoch = info.epoch if info is not None else 1
        request = HeartbeatRequest(broker=broker, broker_epoch=epoch, want_unfence=unfence)
        reply = self.commit(self.controller.heartbeat(request, self.now))
        if info is None:
            assert reply.error is ErrorCode.BROKER_ID_NOT_REGISTERED
        else:
            assert reply.error is ErrorCode.NONE
            assert reply.fenced == self.controller.image.brokers[broker].fenced

    @rule(ms=st.integers(1, 1_500))
    def tick(self, ms: int) -> None:
        self.now += ms
        self.commit(self.controller.tick(self.now))

    @rule(partitions=st.integers(1, 3), rf=st.integers(1, 3))
    def create_topic(self, partitions: int, rf: int) -> None:
        self.topics += 1
        request = CreateTopicRequest(
            topic=f"t{self.topics}", partitions=partitions, replication_factor=rf
        )
        reply = self.commit(self.controller.create_topic(request, self.now))
        live = len(self.controller.image.live_brokers())
        assert (reply.error is ErrorCode.NONE) == (rf <= live)

    @rule(data=st.data(), stale=st.booleans())
    def alter_partition(self, data: st.DataObject, stale: bool) -> None:
        partitions = sorted(self.controller.image.partitions)
        if not partitions:
            return
        key = data.draw(st.sampled_from(partitions))
        p = self.controller.image.partitions[key]
        if p.leader == NO_LEADER:
            return
        others = [r for r in p.replicas if r != p.leader]
        extra = data.draw(st.lists(st.sampled_from(others), unique=True)) if others else []
        isr = (p.leader, *extra)
        broker = self.controller.image.brokers[p.leader]
        request = AlterPartitionRequest(
            broker=p.leader,
            broker_epoch=broker.epoch,
            topic=p.topic,
            partition=p.partition,
            leader_epoch=p.leader_epoch - 1 if stale else p.leader_epoch,
            partition_epoch=p.partition_epoch,
            isr=tuple(isr),
        )
        reply = self.commit(self.controller.alter_partition(request, self.now))
        if stale:
            assert reply.error is ErrorCode.FENCED_LEADER_EPOCH
            assert self.controller.image.partitions[key] == p
        elif reply.error is ErrorCode.NONE:
            assert self.controller.image.partitions[key].isr == tuple(isr)
        else:
            assert reply.error is ErrorCode.INELIGIBLE_REPLICA

    @invariant()
    def partitions_are_sound(self) -> None:
        image = self.controller.image
        live = image.live_brokers()
        for key, p in image.partitions.items():
            assert p.isr
            assert set(p.isr) <= set(p.replicas)
            if p.leader != NO_LEADER:
                assert p.leader in live  # a fenced broker never stays leader
                assert p.leader in p.isr
            epochs = (p.leader_epoch, p.partition_epoch)
            old = self.epochs.get(key, (0, 0))
            assert p.leader_epoch >= old[0]
            assert p.partition_epoch >= old[1]
            self.epochs[key] = epochs

    @invariant()
    def view_is_the_committed_image(self) -> None:
        view = self.controller.view
        assert view is not None
        assert view.brokers == self.controller.image.brokers
        assert view.partitions == self.controller.image.partitions


TestController = ControllerMachine.TestCase
TestController.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
