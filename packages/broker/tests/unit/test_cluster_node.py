"""Three ClusterNodes over a deterministic in-test network: the whole metadata and
replication path — election, registration, topic creation, acks=all, failover."""

from __future__ import annotations

import heapq
import random

from rift_broker.cluster.node import ClusterNode, CreateTopicDone, NodeConfig
from rift_broker.cluster.raft_store import FileRaftStorage
from rift_broker.controller import ControllerConfig, CreateTopicRequest, ErrorCode
from rift_broker.log import LogConfig, PartitionLog
from rift_broker.producer_state import ProducerStateTable
from rift_broker.raft import AppendEntries, RaftConfig
from rift_broker.records import build_batch, iter_batches, iter_records
from rift_broker.replication import ReplicationConfig
from rift_broker.replication.messages import NeedFlush, Observed, ProduceDone
from rift_broker.storage import MemoryStorage

VOTERS = (1, 2, 3)


class Net:
    def __init__(self, seed: int = 1) -> None:
        self.now = 0
        self.rng = random.Random(seed)
        self.disks = {n: MemoryStorage() for n in VOTERS}
        self.nodes: dict[int, ClusterNode] = {}
        self.queue: list[tuple[int, int, int, object]] = []
        self.seq = 0
        self.down: set[int] = set()
        self.done: dict[int, ProduceDone] = {}
        self.created: dict[int, CreateTopicDone] = {}
        self.observed: list[Observed] = []
        for n in VOTERS:
            self.boot(n)

    def boot(self, n: int) -> None:
        disk = self.disks[n]
        store = FileRaftStorage(storage=disk, directory=f"/n{n}/meta")

        def open_log(topic: str, partition: int, configs=()):
            log = PartitionLog.open(
                f"/n{n}/{topic}-{partition}", config=LogConfig(), storage=disk, now_ms=self.now
            )
            producers = ProducerStateTable.from_headers(h for _, h in log.batches_headers())
            return log, producers

        config = NodeConfig(
            node_id=n,
            voters=VOTERS,
            host="127.0.0.1",
            port=9000 + n,
            incarnation=f"n{n}-{self.now}",
            raft=RaftConfig(election_timeout_ms=300, heartbeat_interval_ms=50),
            controller=ControllerConfig(session_timeout_ms=1500),
            replication=ReplicationConfig(replica_lag_time_max_ms=1000, replica_fetch_wait_ms=100),
            heartbeat_interval_ms=200,
        )
        node = ClusterNode(
            config=config,
            raft_state=store.load(),
            open_log=open_log,
            now_ms=self.now,
            next_timeout=lambda: self.rng.randint(300, 600),
        )
        node.store = store  # type: ignore[attr-defined]
        self.nodes[n] = node
        self.down.discard(n)
        self.settle(n)

    def crash(self, n: int) -> None:
        self.down.add(n)
        del self.nodes[n]
        self.disks[n].crash(rng=self.rng)

    def settle(self, n: int) -> None:
        node = self.nodes[n]
        for _ in range(1000):
            while node.has_ready():
                ready = node.ready()
                node.store.persist(ready)  # type: ignore[attr-defined]
                node.advance(ready, self.now)
            for dst, message in node.take_outbox():
                self.seq += 1
                heapq.heappush(
                    self.queue, (self.now + self.rng.randint(1, 3), self.seq, dst, message)
                )
            effects = node.take_effects()
            if not effects and not node.has_ready():
                return
            for effect in effects:
                if isinstance(effect, NeedFlush):
                    log = node.replicas.log(effect.topic, effect.partition)
                    assert log is not None
                    log.flush()
                    node.on_flushed(topic=effect.topic, partition=effect.partition, now_ms=self.now)
                elif isinstance(effect, ProduceDone):
                    self.done[effect.request_id] = effect
                elif isinstance(effect, CreateTopicDone):
                    self.created[effect.request_id] = effect
                elif isinstance(effect, Observed):
                    self.observed.append(effect)
        raise AssertionError("node did not settle")

    def run(self, ms: int) -> None:
        end = self.now + ms
        while self.now < end:
            self.now += 5
            while self.queue and self.queue[0][0] <= self.now:
                _, _, dst, message = heapq.heappop(self.queue)
                if dst in self.down or getattr(message, "src", None) in self.down:
                    continue
                self.nodes[dst].receive(message, self.now)
                self.settle(dst)
            for n, node in self.nodes.items():
                if node.next_deadline(self.now) <= self.now:
                    node.tick(self.now)
                    self.settle(n)
                    # a deadline still due after a tick would spin the real driver
                    assert node.next_deadline(self.now) > self.now, n

    def controller(self) -> int:
        leaders = [n for n, node in self.nodes.items() if node.raft.is_leader]
        assert len(leaders) == 1
        return leaders[0]

    def leader_of(self, topic: str, partition: int) -> int:
        node = self.nodes[next(iter(self.nodes))]
        return node.image.partitions[topic, partition].leader

    def produce(self, rid: int, n: int, values: list[bytes], **kw) -> None:
        self.nodes[n].produce(
            request_id=rid, topic="t", partition=0, batch=build_batch(values, **kw), acks=-1,
            now_ms=self.now,
        )  # fmt: skip
        self.settle(n)

    def values(self, n: int) -> list[bytes]:
        log = self.nodes[n].replicas.log("t", 0)
        assert log is not None
        data = log.read(log.log_start_offset, max_bytes=1 << 30) if log.log_end_offset else b""
        return [r.value for p, _ in iter_batches(data) for r in iter_records(data, p)]


def make_topic(net: Net) -> None:
    net.run(2000)
    c = net.controller()
    assert all(not b.fenced for b in net.nodes[c].image.brokers.values())
    net.nodes[c].create_topic(
        request_id=1,
        request=CreateTopicRequest(
            topic="t", partitions=1, replication_factor=3, configs=(("min.insync.replicas", "2"),)
        ),
        now_ms=net.now,
    )
    net.settle(c)
    net.run(500)
    assert net.created[1].reply.error == ErrorCode.NONE


def test_cluster_forms_creates_a_topic_and_commits_acks_all() -> None:
    net = Net()
    make_topic(net)
    leader = net.leader_of("t", 0)
    net.produce(10, leader, [b"a", b"b"])
    net.run(500)
    assert net.done[10].error == 0
    assert net.done[10].base_offset == 0
    for n in VOTERS:
        assert net.values(n) == [b"a", b"b"]


def test_killed_leader_is_fenced_a_new_leader_serves_and_the_old_one_rejoins() -> None:
    net = Net(seed=7)
    make_topic(net)
    old = net.leader_of("t", 0)
    idem = dict(producer_id=5, producer_epoch=0)
    net.produce(10, old, [b"one"], base_sequence=0, **idem)
    net.run(300)
    assert net.done[10].error == 0
    epoch_before = net.nodes[old].image.partitions["t", 0].leader_epoch
    net.crash(old)
    net.run(4000)  # session timeout, fencing, re-election
    new = net.leader_of("t", 0)
    assert new not in (old, -1)
    assert net.nodes[new].image.partitions["t", 0].leader_epoch > epoch_before
    net.produce(11, new, [b"one"], base_sequence=0, **idem)  # a retry: deduplicated
    net.produce(12, new, [b"two"], base_sequence=1, **idem)
    net.run(500)
    assert net.done[11].error == 0
    assert net.done[11].base_offset == 0
    assert net.done[12].error == 0
    net.boot(old)
    net.run(5000)
    for n in VOTERS:
        assert net.values(n) == [b"one", b"two"]
    info = net.nodes[new].image.partitions["t", 0]
    assert set(info.isr) == set(VOTERS)
    leaders = {(o.value["epoch"], o.value["node"]) for o in net.observed if o.kind == "leader"}
    epochs = [e for e, _ in leaders]
    assert len(epochs) == len(set(epochs)), "two leaders in one epoch"


def test_controller_failover_does_not_fence_live_brokers() -> None:
    # Heartbeats still waiting on the dead controller must not hold back the ones
    # to its successor: here the call timeout (3000 ms) exceeds the session (1500 ms),
    # so waiting it out got every live broker fenced by the new controller.
    net = Net(seed=3)
    make_topic(net)
    old = net.controller()
    net.crash(old)
    net.run(3000)
    new = net.controller()
    assert new != old
    image = net.nodes[new].image
    live = [n for n in VOTERS if n != old]
    assert all(not image.brokers[n].fenced for n in live), image.brokers
    info = image.partitions["t", 0]
    assert info.leader in live
    assert set(live) <= set(info.isr), info


def carries_partition_record(item: tuple[int, int, int, object]) -> bool:
    message = item[3]
    return isinstance(message, AppendEntries) and any(
        b'"type":"PartitionRecord"' in e.command for e in message.entries
    )


def test_a_decision_commits_whole_or_not_at_all() -> None:
    # The controller dies after its followers got the entry creating a topic but not
    # the one with its partition: its successor commits what it holds. Records of one
    # decision proposed as separate entries left a topic that exists with no
    # partitions - every later CreateTopics answered TOPIC_ALREADY_EXISTS, and nobody
    # could ever produce to it. One entry per decision commits all of it or none.
    net = Net(seed=5)
    net.run(2000)
    c = net.controller()
    request = CreateTopicRequest(
        topic="t", partitions=1, replication_factor=3, configs=(("min.insync.replicas", "2"),)
    )
    net.nodes[c].create_topic(request_id=1, request=request, now_ms=net.now)
    net.settle(c)
    for _ in range(20):  # the partition's record never leaves the controller
        net.queue = [item for item in net.queue if not carries_partition_record(item)]
        heapq.heapify(net.queue)
        net.run(5)
    net.crash(c)
    net.run(1000)
    net.boot(c)
    net.run(2000)
    new = net.controller()
    net.nodes[new].create_topic(request_id=2, request=request, now_ms=net.now)
    net.settle(new)
    net.run(500)
    assert net.created[2].reply.error in (ErrorCode.NONE, ErrorCode.TOPIC_ALREADY_EXISTS)
    for node in net.nodes.values():
        assert set(node.image.topics) == {"t"}
        assert ("t", 0) in node.image.partitions, "a topic without its partition"
