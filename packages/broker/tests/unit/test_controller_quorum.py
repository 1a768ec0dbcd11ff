"""Controllers over a simulated Raft quorum, wired exactly as the driver loop in
``rift_broker.raft``'s docstring: committed entries feed each node's image, Raft
snapshots carry the image, the Raft leader's controller is the active one."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from rift_broker.controller import (
    Controller,
    ControllerConfig,
    CreateTopicRequest,
    Decision,
    HeartbeatReply,
    HeartbeatRequest,
    MetadataImage,
    RegisterReply,
    RegisterRequest,
    encode_records,
)
from rift_broker.raft import Entry, RaftConfig, RaftNode
from rift_broker.raft.testing import SimCluster

SESSION = 1_000
R = TypeVar("R")


class ControllerSim(SimCluster):
    def __init__(self, size: int, seed: int) -> None:
        self.controllers: dict[int, Controller] = {}
        config = RaftConfig(election_timeout_ms=150, heartbeat_interval_ms=30, snapshot_threshold=8)
        super().__init__(size, random.Random(seed), config=config)

    def restart(self, node_id: int) -> None:
        config = ControllerConfig(session_timeout_ms=SESSION)
        self.controllers[node_id] = Controller(node_id, config=config)
        super().restart(node_id)

    def apply(self, node_id: int, entry: Entry) -> None:
        super().apply(node_id, entry)
        self.controllers[node_id].apply(entry.index, entry.command)

    def snapshot_state(self, node_id: int) -> bytes:
        image = self.controllers[node_id].snapshot()
        return json.dumps(
            {"list": super().snapshot_state(node_id).decode(), "image": image.decode()}
        ).encode()

    def restore_state(self, node_id: int, data: bytes) -> None:
        doc = json.loads(data)
        super().restore_state(node_id, doc["list"].encode())
        self.controllers[node_id].restore(doc["image"].encode())

    def after_input(self, node: RaftNode) -> None:
        self.controllers[node.node_id].on_leadership(
            is_leader=node.is_leader, term=node.term, log_end=node.log.last_index, now_ms=self.now
        )

    # -- helpers for the tests --------------------------------------------------

    def active(self) -> Controller | None:
        live = [self.controllers[n.node_id] for n in self.live()]
        found = [c for c in live if c.active]
        return max(found, key=lambda c: c.term or 0) if found else None

    def submit(self, decide: Callable[[Controller, int], Decision[R]]) -> R:
        """Decide on the active controller, propose the records, wait until applied."""
        assert self.run_until(lambda: self.active() is not None, within_ms=5_000)
        controller = self.active()
        assert controller is not None
        decision = decide(controller, self.now)
        index = 0
        if decision.records:  # one entry per decision, as the driver proposes it
            proposed = self.propose(controller.node_id, encode_records(decision.records))
            assert isinstance(proposed, int)
            index = proposed
        assert self.run_until(
            lambda: all(n.applied_index >= index for n in self.live()), within_ms=5_000
        )
        return decision.reply

    def images(self) -> list[MetadataImage]:
        return [self.controllers[n.node_id].image for n in self.live()]


def register(request: RegisterRequest, c: Controller, now: int) -> Decision[RegisterReply]:
    return c.register(request, now)


def heartbeat(request: HeartbeatRequest, c: Controller, now: int) -> Decision[HeartbeatReply]:
    return c.heartbeat(request, now)


def start(seed: int) -> tuple[ControllerSim, dict[int, int]]:
    sim = ControllerSim(3, seed)
    epochs: dict[int, int] = {}
    for b in (1, 2, 3):
        request = RegisterRequest(broker=b, incarnation="x", host="h", port=9000 + b)
        reply = sim.submit(partial(register, request))
        assert isinstance(reply, RegisterReply)
        epochs[b] = reply.broker_epoch
        beat = HeartbeatRequest(broker=b, broker_epoch=epochs[b])
        sim.submit(partial(heartbeat, beat))
    return sim, epochs


def create(sim: ControllerSim, topic: str) -> None:
    request = CreateTopicRequest(topic=topic, partitions=2, replication_factor=3)
    sim.submit(lambda c, now: c.create_topic(request, now))


def test_every_node_follows_the_same_metadata() -> None:
    sim, _ = start(seed=1)
    for n in range(5):
        create(sim, f"t{n}")
    images = sim.images()
    assert len(images) == 3
    assert all(image == images[0] for image in images)
    assert len(images[0].topics) == 5
    assert images[0].live_brokers() == {1, 2, 3}


def test_a_lagging_node_catches_up_through_a_snapshot_of_the_image() -> None:
    sim, _ = start(seed=2)
    leader = sim.leader()
    assert leader is not None
    lagging = next(i for i in sim.ids if i != leader.node_id)
    sim.crash(lagging)
    for n in range(12):
        create(sim, f"t{n}")
    assert leader.log.offset > 10  # compacted: the lagging node cannot replay the log
    sim.restart(lagging)
    node = sim.nodes[lagging]
    assert node is not None
    assert sim.run_until(lambda: node.applied_index >= leader.applied_index, within_ms=5_000)
    assert sim.storage[lagging].snapshot is not None
    assert sim.controllers[lagging].image == sim.controllers[leader.node_id].image


def test_controller_failover_fences_a_silent_broker_and_moves_its_leaders() -> None:
    sim, epochs = start(seed=3)
    create(sim, "t")
    before = {p.partition: p for p in sim.images()[0].partitions_of("t")}
    old = sim.leader()
    assert old is not None
    sim.crash(old.node_id)
    for _ in range(4):  # brokers 2 and 3 keep heartbeating; broker 1 is silent
        for b in (2, 3):
            beat = HeartbeatRequest(broker=b, broker_epoch=epochs[b])
            sim.submit(partial(heartbeat, beat))
        sim.run_for(300)
    new = sim.active()
    assert new is not None
    assert new.node_id != old.node_id
    sim.submit(lambda c, now: c.tick(now))
    image = new.image
    assert image.live_brokers() == {2, 3}
    for p in image.partitions_of("t"):
        assert p.leader in {2, 3}
        assert 1 not in p.isr
        moved = before[p.partition].leader == 1
        assert p.leader_epoch == before[p.partition].leader_epoch + moved
    sim.restart(old.node_id)
    sim.run_for(1_000)
    images = sim.images()
    assert len(images) == 3
    assert all(i == images[0] for i in images)
