"""The simulation driver on toy sans-IO nodes: determinism, faults, timers."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from rift_chaos.sim import LinkFaults, NodeContext, Simulation


@dataclass
class Disk:
    synced: list[int] = field(default_factory=list)
    unsynced: list[int] = field(default_factory=list)


class Gossip:
    """Every 10 ms sends its counter to the others; keeps the max it has seen.

    Durable state is a disk: it syncs every other update, so a crash loses some.
    """

    def __init__(self, name: str, peers: list[str], disk: Disk) -> None:
        self.name = name
        self.peers = [p for p in peers if p != name]
        self.disk = disk
        self.value = max(disk.synced, default=0)
        self.seen: list[tuple[str, int]] = []

    def start(self, ctx: NodeContext) -> None:
        ctx.set_timer("tick", 10)

    def receive(self, ctx: NodeContext, src: str, message: Any) -> None:
        self.seen.append((src, message))
        if message > self.value:
            self.value = message
            ctx.observe("value", message)

    def timer(self, ctx: NodeContext, name: str) -> None:
        self.value += ctx.random.randint(1, 3)
        self.disk.unsynced.append(self.value)
        if len(self.disk.unsynced) >= 2:
            self.disk.synced.extend(self.disk.unsynced)
            self.disk.unsynced.clear()
        for peer in self.peers:
            ctx.send(peer, self.value)
        ctx.set_timer("tick", 10)


class GossipSystem:
    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.disks = {n: Disk() for n in names}
        self.created: list[str] = []

    def create(self, name: str) -> Gossip:
        self.created.append(name)
        return Gossip(name, self.names, self.disks[name])

    def crash_disk(self, name: str, rng: random.Random) -> None:
        self.disks[name].unsynced.clear()


NAMES = ["n1", "n2", "n3"]


def run(seed: int, *, faults: LinkFaults | None = None, until: int = 500) -> Simulation:
    sim = Simulation(system=GossipSystem(NAMES), nodes=NAMES, seed=seed, faults=faults)
    sim.boot()
    sim.run(until_ms=until)
    return sim


def test_same_seed_same_trace_hash_different_seed_differs() -> None:
    faults = LinkFaults(min_latency_ms=1, max_latency_ms=20, loss=0.1, duplicate=0.1)
    a, b, c = run(7, faults=faults), run(7, faults=faults), run(8, faults=faults)
    assert a.trace_hash == b.trace_hash
    assert a.steps == b.steps
    assert a.trace_hash != c.trace_hash


def test_virtual_time_jumps_to_events() -> None:
    sim = run(1, until=10_000)
    # 10 s of virtual time, a tick every 10 ms per node: ~1000 ticks each, plus
    # every delivery; none of it waited for a real clock.
    assert sim.steps >= 3 * 999
    assert sim.now_ms == 10_000


def test_partition_drops_on_arrival_and_heal_restores() -> None:
    system = GossipSystem(NAMES)
    sim = Simulation(system=system, nodes=NAMES, seed=3, trace=True)
    sim.boot()
    sim.run(until_ms=50)
    sim.partition({"n3": {"n1", "n2"}})
    before = len(system_node(sim, "n3").seen)
    sim.run(until_ms=200)
    assert len(system_node(sim, "n3").seen) == before  # n3 hears nobody
    assert any("drop n1->n3" in line for line in sim.trace)
    sim.heal()
    sim.run(until_ms=300)
    assert len(system_node(sim, "n3").seen) > before


def system_node(sim: Simulation, name: str) -> Gossip:
    node = sim.node(name)
    assert isinstance(node, Gossip)
    return node


def test_kill_loses_volatile_state_and_unsynced_writes_restart_recovers_synced() -> None:
    system = GossipSystem(NAMES)
    sim = Simulation(system=system, nodes=NAMES, seed=5)
    sim.boot()
    sim.run(until_ms=35)  # three ticks: one sync of two values, one unsynced
    assert system.disks["n1"].unsynced
    sim.kill("n1")
    assert not sim.is_up("n1")
    assert system.disks["n1"].unsynced == []
    with pytest.raises(KeyError, match="not running"):
        sim.node("n1")
    sim.run(until_ms=100)  # messages to the dead node are dropped, no timers fire
    sim.restart("n1")
    sim.run(until_ms=101)
    assert system.created.count("n1") == 2
    assert system_node(sim, "n1").value >= max(system.disks["n1"].synced)


def test_pause_holds_events_and_resume_replays_them_in_order() -> None:
    system = GossipSystem(NAMES)
    sim = Simulation(system=system, nodes=NAMES, seed=9)
    sim.boot()
    sim.run(until_ms=20)
    sim.pause("n2")
    seen = list(system_node(sim, "n2").seen)
    sim.run(until_ms=200)
    assert system_node(sim, "n2").seen == seen  # nothing processed while stopped
    sim.resume("n2")
    sim.run(until_ms=200)  # held deliveries run at the resume instant
    assert len(system_node(sim, "n2").seen) > len(seen)


def test_clog_holds_messages_to_and_from_a_running_node_until_unclogged() -> None:
    system = GossipSystem(NAMES)
    sim = Simulation(system=system, nodes=NAMES, seed=4, trace=True)
    sim.boot()
    sim.run(until_ms=50)
    sim.clog("n3")
    seen3 = len(system_node(sim, "n3").seen)
    from_n3 = sum(1 for src, _ in system_node(sim, "n1").seen if src == "n3")
    value3 = system_node(sim, "n3").value
    sim.run(until_ms=200)
    assert len(system_node(sim, "n3").seen) == seen3  # hears nobody
    assert sum(1 for src, _ in system_node(sim, "n1").seen if src == "n3") == from_n3
    assert system_node(sim, "n3").value > value3  # but runs on: its timers fire
    sim.unclog("n3")
    sim.run(until_ms=200)  # what was held arrives at the unclog instant, in order
    held = system_node(sim, "n3").seen[seen3:]
    assert len(held) > 20
    assert [v for src, v in held if src == "n1"] == sorted(v for src, v in held if src == "n1")
    assert sum(1 for src, _ in system_node(sim, "n1").seen if src == "n3") > from_n3
    assert "200 unclog n3" in sim.trace


def test_clock_offset_is_what_the_node_sees() -> None:
    seen_times: list[int] = []

    class Clocked(Gossip):
        def timer(self, ctx: NodeContext, name: str) -> None:
            seen_times.append(ctx.now_ms)

    class System(GossipSystem):
        def create(self, name: str) -> Gossip:
            return Clocked(name, self.names, self.disks[name])

    sim = Simulation(system=System(["a"]), nodes=["a"], seed=1)
    sim.set_clock_offset("a", 5_000)
    sim.boot()
    sim.run(until_ms=20)
    assert seen_times == [5_010]


def test_scheduled_calls_and_observations() -> None:
    sim = Simulation(system=GossipSystem(NAMES), nodes=NAMES, seed=2)
    sim.boot()
    fired: list[int] = []
    sim.call_at(55, lambda: fired.append(sim.now_ms), label="probe")
    sim.run(until_ms=100)
    assert fired == [55]
    assert sim.observations
    assert all(obs.kind == "value" for _, obs in sim.observations)


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="probability"):
        LinkFaults(loss=1.5)
    with pytest.raises(ValueError, match="latency"):
        LinkFaults(min_latency_ms=5, max_latency_ms=1)
    with pytest.raises(ValueError, match="unique"):
        Simulation(system=GossipSystem(NAMES), nodes=["a", "a"], seed=1)
