"""Replica managers of three brokers, wired by a deterministic in-test router.

The test plays the controller: it commits ISR changes proposed with the current
leader epoch and partition epoch, and elects leaders from the ISR on demand.
"""

from __future__ import annotations

import dataclasses
from collections import deque

import pytest

from rift_broker.log import LogConfig, PartitionLog
from rift_broker.producer_state import ProducerStateTable
from rift_broker.records import build_batch, iter_batches, iter_records
from rift_broker.replication.manager import ReplicaManager, ReplicationConfig
from rift_broker.replication.messages import (
    NONE,
    NOT_ENOUGH_REPLICAS,
    NOT_LEADER_OR_FOLLOWER,
    Effect,
    NeedFlush,
    Observed,
    PartitionAssignment,
    ProduceDone,
    ProposeIsr,
    SendToPeer,
)
from rift_broker.server.topics import topic_log_config
from rift_broker.storage import MemoryStorage

T, P = "t", 0
CONFIG = ReplicationConfig(replica_lag_time_max_ms=1000, replica_fetch_wait_ms=200)


class Cluster:
    def __init__(self, nodes=(1, 2, 3), *, min_isr: int = 2, configs=()) -> None:
        self.now = 0
        self.disks = {n: MemoryStorage() for n in nodes}
        self.managers = {n: self._manager(n) for n in nodes}
        self.assignment = PartitionAssignment(
            topic=T,
            partition=P,
            replicas=tuple(nodes),
            isr=tuple(nodes),
            leader=nodes[0],
            leader_epoch=0,
            partition_epoch=0,
            min_insync_replicas=min_isr,
            configs=configs,
        )
        self.queue: deque[tuple[int, Effect]] = deque()
        self.done: dict[int, ProduceDone] = {}
        self.cut: set[int] = set()  # nodes whose peer traffic is dropped
        self.observed: list[Observed] = []
        self.next_request = 0
        self.publish()

    def _manager(self, node: int) -> ReplicaManager:
        def open_log(topic: str, partition: int, configs=()):
            log = PartitionLog.open(
                f"/n{node}/{topic}-{partition}",
                config=LogConfig(),
                storage=self.disks[node],
                now_ms=self.now,
            )
            return log, ProducerStateTable()

        return ReplicaManager(node_id=node, open_log=open_log, config=CONFIG)

    def publish(self) -> None:
        for node, manager in self.managers.items():
            self.push(node, manager.apply(self.assignment, now_ms=self.now))
        self.drain()

    def push(self, node: int, effects: list[Effect]) -> None:
        self.queue.extend((node, e) for e in effects)

    def drain(self, limit: int = 10_000) -> None:
        for _ in range(limit):
            if not self.queue:
                return
            node, effect = self.queue.popleft()
            manager = self.managers[node]
            if isinstance(effect, SendToPeer):
                m = effect.message
                if m.src in self.cut or m.dst in self.cut:
                    continue
                self.push(m.dst, self.managers[m.dst].receive(m, now_ms=self.now))
            elif isinstance(effect, NeedFlush):
                log = manager.log(effect.topic, effect.partition)
                assert log is not None
                log.flush()
                self.push(
                    node,
                    manager.on_flushed(
                        topic=effect.topic, partition=effect.partition, now_ms=self.now
                    ),
                )
            elif isinstance(effect, ProduceDone):
                assert effect.request_id not in self.done, "answered twice"
                self.done[effect.request_id] = effect
            elif isinstance(effect, ProposeIsr):
                change = effect.change
                a = self.assignment
                if (change.leader_epoch, change.partition_epoch) == (
                    a.leader_epoch,
                    a.partition_epoch,
                ):
                    self.assignment = dataclasses.replace(
                        a, isr=change.isr, partition_epoch=a.partition_epoch + 1
                    )
                    self.publish()
                else:
                    manager.reject_isr_change(topic=T, partition=P)
            elif isinstance(effect, Observed):
                self.observed.append(effect)
        raise AssertionError("effects did not settle")

    def advance(self, ms: int, step: int = 50) -> None:
        end = self.now + ms
        while self.now < end:
            self.now += step
            for node, manager in self.managers.items():
                if node not in self.cut:
                    self.push(node, manager.tick(now_ms=self.now))
            self.drain()

    def produce(self, node: int, values: list[bytes], *, acks: int = -1, **batch_args) -> int:
        self.next_request += 1
        rid = self.next_request
        batch = build_batch(values, **batch_args)
        self.push(
            node,
            self.managers[node].produce(
                request_id=rid, topic=T, partition=P, batch=batch, acks=acks, now_ms=self.now
            ),
        )
        self.drain()
        return rid

    def elect(self, leader: int) -> None:
        a = self.assignment
        assert leader in a.isr, "unclean election"
        self.assignment = dataclasses.replace(
            a, leader=leader, leader_epoch=a.leader_epoch + 1, partition_epoch=a.partition_epoch + 1
        )
        self.publish()

    def values(self, node: int, *, upto_hw: bool = False) -> list[bytes]:
        log = self.managers[node].log(T, P)
        assert log is not None
        limit = self.managers[node].high_watermark(T, P) if upto_hw else None
        data = (
            log.read(log.log_start_offset, max_bytes=1 << 30, max_offset=limit)
            if log.log_end_offset
            else b""
        )
        out = []
        for position, header in iter_batches(data):
            if limit is not None and header.base_offset >= limit:
                break
            out.extend(r.value for r in iter_records(data, position))
        return out


def test_acks_all_is_answered_once_every_isr_member_holds_it() -> None:
    c = Cluster()
    rid = c.produce(1, [b"a", b"b"])
    c.advance(100)
    assert c.done[rid].error == NONE
    assert c.done[rid].base_offset == 0
    assert c.managers[1].high_watermark(T, P) == 2
    assert c.values(2) == c.values(3) == [b"a", b"b"]


def test_a_cut_follower_is_dropped_from_the_isr_and_acks_all_proceeds() -> None:
    c = Cluster()
    c.cut.add(3)
    rid = c.produce(1, [b"x"])
    c.advance(200)
    assert rid not in c.done  # node 3 is still in the ISR and has not fetched it
    c.advance(1500)
    assert c.assignment.isr == (1, 2)
    assert c.done[rid].error == NONE
    c.cut.clear()  # it comes back, catches up, and rejoins
    c.advance(2000)
    assert c.assignment.isr == (1, 2, 3)
    assert c.values(3) == [b"x"]


def test_below_min_isr_acks_all_is_refused_before_appending() -> None:
    c = Cluster(min_isr=2)
    c.cut.update({2, 3})
    c.advance(2000)
    assert c.assignment.isr == (1,)
    rid = c.produce(1, [b"never"])
    assert c.done[rid].error == NOT_ENOUGH_REPLICAS
    assert c.values(1) == []


def test_failover_truncates_the_old_leaders_unreplicated_tail() -> None:
    c = Cluster()
    ok = c.produce(1, [b"committed"])
    c.advance(100)
    assert c.done[ok].error == NONE
    c.cut.update({2, 3})  # node 1 keeps appending, nobody receives it
    lost = c.produce(1, [b"divergent-1", b"divergent-2"])
    assert lost not in c.done
    c.cut.clear()
    c.cut.add(1)
    c.elect(2)  # node 1 is gone; 2 leads epoch 1
    assert c.done[lost].error == NOT_LEADER_OR_FOLLOWER  # the old leader gave up on it
    after = c.produce(2, [b"new"])
    c.advance(2000)
    assert c.done[after].error == NONE
    c.cut.clear()
    c.advance(2000)  # node 1 learns it follows 2, asks where epoch 0 ends, truncates
    assert c.values(1) == c.values(2) == c.values(3) == [b"committed", b"new"]
    assert set(c.assignment.isr) == {1, 2, 3}


def test_stale_leader_epoch_fetches_are_fenced() -> None:
    c = Cluster()
    c.produce(1, [b"a"])
    c.advance(100)
    c.elect(2)
    c.advance(200)
    leaders = {(o.value["node"], o.value["epoch"]) for o in c.observed if o.kind == "leader"}
    assert leaders == {(1, 0), (2, 1)}
    assert not c.managers[1].is_leader(T, P)
    rid = c.produce(1, [b"zombie"])
    assert c.done[rid].error == NOT_LEADER_OR_FOLLOWER


def test_idempotent_retry_after_failover_gets_the_original_offset() -> None:
    c = Cluster()
    idem = dict(producer_id=7, producer_epoch=0, base_sequence=0)
    first = c.produce(1, [b"once"], **idem)
    c.advance(100)
    assert c.done[first].base_offset == 0
    c.elect(2)
    retry = c.produce(2, [b"once"], **idem)
    c.advance(100)
    assert c.done[retry].error == NONE
    assert c.done[retry].base_offset == 0
    assert c.values(2) == [b"once"]


def test_high_watermark_never_moves_back_across_leaders() -> None:
    c = Cluster()
    for i in range(5):
        c.produce(1, [f"v{i}".encode()])
        c.advance(60)
    c.elect(2)
    for i in range(5, 8):
        c.produce(2, [f"v{i}".encode()])
        c.advance(60)
    by_epoch: dict[int, list[int]] = {}
    for o in c.observed:
        if o.kind == "high-watermark":
            by_epoch.setdefault(o.value["epoch"], []).append(o.value["offset"])
    for offsets in by_epoch.values():
        assert offsets == sorted(offsets)
    assert max(by_epoch[1]) == 8
    # A follower learns the HW from its next fetch response, a round later.
    assert c.managers[3].high_watermark(T, P) == 7
    c.advance(500)
    assert c.managers[3].high_watermark(T, P) == 8
    assert c.values(3, upto_hw=True) == [f"v{i}".encode() for i in range(8)]


@pytest.mark.parametrize("acks", [0, 1])
def test_acks_0_and_1_do_not_wait_for_followers(acks: int) -> None:
    c = Cluster()
    c.cut.update({2, 3})
    rid = c.produce(1, [b"q"], acks=acks)
    if acks == 0:
        assert rid not in c.done
    else:
        assert c.done[rid].error == NONE


def test_after_a_tick_no_deadline_is_already_due() -> None:
    """A deadline left in the past makes the driver tick in a busy loop."""
    c = Cluster()
    c.cut.add(1)  # node 2's requests to the leader go unanswered: a deadline is armed
    c.advance(100)
    c.cut.clear()
    c.elect(2)  # the follower with an armed deadline becomes the leader
    for _ in range(20):
        c.advance(CONFIG.request_timeout_ms // 4)
        for node, manager in c.managers.items():
            c.push(node, manager.tick(now_ms=c.now))
            assert manager.next_deadline(now_ms=c.now) > c.now, node
        c.drain()


# -- retention while replicating ---------------------------------------------------


class RetentionCluster(Cluster):
    """Topic configs set small segments (one 1-record batch each) and size retention."""

    TOPIC_CONFIGS = (("segment.bytes", "200"), ("retention.bytes", "400"))

    def __init__(self) -> None:
        super().__init__(configs=self.TOPIC_CONFIGS)

    def _manager(self, node: int) -> ReplicaManager:
        def open_log(
            topic: str, partition: int, configs: tuple[tuple[str, str], ...]
        ) -> tuple[PartitionLog, ProducerStateTable]:
            config = topic_log_config(LogConfig(retention_ms=-1), dict(configs))
            log = PartitionLog.open(
                f"/n{node}/{topic}-{partition}",
                config=config,
                storage=self.disks[node],
                now_ms=self.now,
            )
            return log, ProducerStateTable()

        return ReplicaManager(node_id=node, open_log=open_log, config=CONFIG)

    def maintain(self) -> None:
        for node, manager in self.managers.items():
            if node not in self.cut:
                manager.maintain(now_ms=self.now, wall_ms=self.now)

    def log(self, node: int) -> PartitionLog:
        log = self.managers[node].log(T, P)
        assert log is not None
        return log


def produce_many(c: Cluster, node: int, count: int, *, start: int = 0, acks: int = -1) -> None:
    for i in range(start, start + count):
        c.produce(node, [f"v{i:03d}".encode() + b"." * 45], acks=acks)
        c.advance(50)


def test_every_replica_deletes_old_segments_and_keeps_the_tail() -> None:
    c = RetentionCluster()
    produce_many(c, 1, 10)
    assert all(c.log(n).log_end_offset == 10 for n in (1, 2, 3))
    assert c.log(1).config.retention_bytes == 400  # the topic's config reached the log
    c.maintain()
    for n in (1, 2, 3):
        log = c.log(n)
        assert log.log_start_offset > 0, n
        assert log.size_bytes >= 400
        values = c.values(n)
        assert values == [f"v{i:03d}".encode() + b"." * 45 for i in range(log.log_start_offset, 10)]


def test_the_leader_never_deletes_at_or_past_its_high_watermark() -> None:
    c = RetentionCluster()
    produce_many(c, 1, 3)
    c.cut.update({2, 3})  # followers fetch nothing: the HW stays at 3
    produce_many(c, 1, 7, start=3, acks=1)
    leader = c.log(1)
    assert c.managers[1].high_watermark(T, P) == 3
    assert leader.log_end_offset == 10
    c.maintain()
    # Size retention alone would keep only the last few segments; the HW holds it at 3.
    assert leader.log_start_offset == 3
    assert leader.segment_base_offsets[0] == 3


def test_a_follower_behind_the_leaders_start_restarts_there_and_catches_up() -> None:
    c = RetentionCluster()
    produce_many(c, 1, 3)
    c.cut.add(3)
    produce_many(c, 1, 20, start=3)  # node 3 leaves the ISR; the rest commits
    c.advance(1500)
    assert 3 not in c.assignment.isr
    c.maintain()
    start = c.log(1).log_start_offset
    assert start > c.log(3).log_end_offset == 3  # deleted past the follower's end
    c.cut.clear()
    c.advance(2000)
    follower = c.log(3)
    assert follower.log_start_offset == start
    assert follower.log_end_offset == 23
    assert c.values(3) == c.values(1)
    assert 3 in c.assignment.isr
    # It serves as a leader from there, idempotence aside.
    c.elect(3)
    rid = c.produce(3, [b"after"])
    c.advance(200)
    assert c.done[rid].error == NONE
    assert c.values(3)[-1] == b"after"


def test_a_follower_raises_its_log_start_to_the_leaders() -> None:
    c = RetentionCluster()
    produce_many(c, 1, 10)
    c.managers[1].maintain(now_ms=c.now, wall_ms=c.now)  # only the leader deletes
    leader_start = c.log(1).log_start_offset
    assert leader_start > 0
    assert c.log(2).log_start_offset == 0
    produce_many(c, 1, 1, start=10)  # the next fetch responses carry the new start
    c.advance(300)
    for n in (2, 3):
        assert c.log(n).log_start_offset == leader_start, n
        assert c.log(n).segment_base_offsets[0] == 0  # deleted at the next round
    c.maintain()
    for n in (2, 3):
        assert c.log(n).segment_base_offsets[0] >= leader_start, n
