"""The reference broker in the deterministic simulator (``chaos sim``).

``chaos sim --system rift-broker`` loads the System registered under that name in
the ``rift.systems`` entry points (``rift_broker.chaos_plugin:BrokerSystem``) and
takes its simulation harness from ``simulation_system`` in the ``sim`` submodule of
the System's module — this module (see
:func:`rift_chaos.sim.scenario.find_harness_factory`).

:func:`simulation_system` builds, for one scenario:

- one :class:`BrokerSimNode` per node: a real :class:`ClusterNode` (Raft voter,
  controller, replica manager) on a :class:`MemoryStorage` disk that outlives kills;
  a kill drops the disk's unsynced bytes and may tear the last write;
- an admin that creates topic ``t`` (replication factor 3, the scenario's
  ``min.insync.replicas``), the scenario's clients (idempotent acks=all sends,
  polls) and a final reader, all writing one history in the checker's schema;
- the broker's ``leader`` and ``high-watermark`` observations, in that history too
  (its ``vote`` and ``elected`` moments only feed ``kill-at`` faults);
- the invariants of :mod:`._sim_invariants`, checked after every event.

Of the scenario's ``settings`` it honours ``election_jitter_ms``, and retention:
``segment_bytes`` and ``retention_bytes`` become the topic's ``segment.bytes`` and
``retention.bytes`` (size retention only: ``retention.ms`` is -1), and
``maintain_interval_ms`` how often every node runs log maintenance. Without them the
nodes run no maintenance and logs keep everything.
"""

from __future__ import annotations

import random
from typing import Any

from rift_broker.chaos_plugin._sim_client import (
    ClientSettings,
    FinalReader,
    Shared,
    SimAdmin,
    SimClient,
)
from rift_broker.chaos_plugin._sim_invariants import Invariants
from rift_broker.chaos_plugin._sim_node import BrokerSimNode
from rift_broker.cluster.node import NodeConfig
from rift_broker.controller import ControllerConfig
from rift_broker.raft import RaftConfig
from rift_broker.replication import ReplicationConfig
from rift_broker.storage import MemoryStorage
from rift_chaos.sim import Observation, Simulation
from rift_chaos.sim.scenario import Scenario

__all__ = ["BrokerSimHarness", "BrokerSimSystem", "BrokerSimNode", "simulation_system"]


ELECTION_TIMEOUT_MS = 450


def node_config(
    node_id: int,
    voters: tuple[int, ...],
    *,
    incarnation: str,
    election_timeout_ms: int = ELECTION_TIMEOUT_MS,
) -> NodeConfig:
    """Timings scaled down (about 10x faster than the defaults) for short scenarios."""
    return NodeConfig(
        node_id=node_id,
        voters=voters,
        host="sim",
        port=9000 + node_id,
        incarnation=incarnation,
        raft=RaftConfig(election_timeout_ms=election_timeout_ms, heartbeat_interval_ms=150),
        controller=ControllerConfig(session_timeout_ms=1_600),
        replication=ReplicationConfig(
            replica_lag_time_max_ms=1_000, replica_fetch_wait_ms=400, request_timeout_ms=600
        ),
        heartbeat_interval_ms=400,
        call_timeout_ms=1_000,
    )


class BrokerSimSystem:
    """The SimSystem: brokers ``n1..nN`` (node ids 1..N), each with a lasting disk.

    A follower campaigns after ``election_timeout_ms`` plus up to ``election_jitter_ms``
    (drawn per election) without its leader; the broker's own choice is a jitter as
    long as the timeout, and a short one makes candidates collide (split votes).
    """

    def __init__(
        self,
        nodes: tuple[str, ...],
        *,
        invariants: Invariants | None = None,
        election_timeout_ms: int = ELECTION_TIMEOUT_MS,
        election_jitter_ms: int | None = None,
        maintain_interval_ms: int | None = None,
    ) -> None:
        self.maintain_interval_ms = maintain_interval_ms
        self.election_timeout_ms = election_timeout_ms
        self.election_jitter_ms = (
            election_timeout_ms if election_jitter_ms is None else max(1, election_jitter_ms)
        )
        self.names = {i: name for i, name in enumerate(nodes, start=1)}
        self.ids = {name: i for i, name in self.names.items()}
        self.voters = tuple(self.names)
        self.disks = {name: MemoryStorage() for name in nodes}
        self.invariants = invariants or Invariants()
        self.live: dict[str, BrokerSimNode] = {}
        self._starts = 0

    def create(self, name: str) -> BrokerSimNode:
        self._starts += 1
        node = BrokerSimNode(
            name=name,
            node_id=self.ids[name],
            names=self.names,
            disk=self.disks[name],
            config=node_config(
                self.ids[name],
                self.voters,
                incarnation=f"{name}-{self._starts}",
                election_timeout_ms=self.election_timeout_ms,
            ),
            invariants=self.invariants,
            election_jitter_ms=self.election_jitter_ms,
            maintain_interval_ms=self.maintain_interval_ms,
        )
        self.live[name] = node
        return node

    def crash_disk(self, name: str, rng: random.Random) -> None:
        self.live.pop(name, None)
        self.disks[name].crash(rng=rng)


class BrokerSimHarness:
    """The broker's :class:`~rift_chaos.sim.scenario.SimHarness` for one scenario."""

    def __init__(self, scenario: Scenario, *, client_settings: ClientSettings | None = None):
        self.scenario = scenario
        settings = scenario.settings
        self.system = BrokerSimSystem(
            scenario.nodes,
            election_timeout_ms=settings.get("election_timeout_ms", ELECTION_TIMEOUT_MS),
            election_jitter_ms=settings.get("election_jitter_ms"),
            maintain_interval_ms=settings.get("maintain_interval_ms"),
        )
        self._client_settings = client_settings
        self._final: FinalReader | None = None
        self._shared: Shared | None = None

    def install(self, sim: Simulation, history: Any) -> None:
        scenario = self.scenario
        self.system.invariants.now_ms = lambda: sim.now_ms
        shared = Shared(history=history, nodes=scenario.nodes, partitions=scenario.partitions)
        self._shared = shared

        def observe(now_ms: int, obs: Observation) -> None:
            if obs.kind in ("leader", "high-watermark"):
                history.observe(f=obs.kind, value=obs.value, node=obs.node, time=now_ms * 1_000_000)

        sim.observers.append(observe)
        admin = SimAdmin(
            nodes=scenario.nodes,
            partitions=scenario.partitions,
            min_insync_replicas=scenario.min_insync_replicas,
            configs=topic_configs(scenario),
        )
        sim.add_node("admin", admin)
        for slot in range(scenario.clients):
            ops = [(op.at_ms, op.f) for op in scenario.ops if op.process == slot]
            client = SimClient(
                slot=slot,
                clients=scenario.clients,
                ops=ops,
                shared=shared,
                stop_at_ms=scenario.fault_end_ms,
                settings=self._client_settings,
            )
            sim.add_node(f"c{slot}", client)
        self._final = FinalReader(shared=shared, at_ms=scenario.end_ms, process=1_000_000)
        sim.add_node("final", self._final)

    def leader(self) -> str | None:
        """The leader of t/0 (highest epoch among live replicas), else the controller."""
        best: tuple[int, str] | None = None
        controller: str | None = None
        for name, sim_node in self.system.live.items():
            node = sim_node.node
            if node is None:
                continue
            if node.raft.is_leader:
                controller = name
            replica = node.replicas._replicas.get(("t", 0))
            leading = replica.leader if replica is not None else None
            if leading is not None and (best is None or leading.leader_epoch > best[0]):
                best = (leading.leader_epoch, name)
        return best[1] if best is not None else controller

    @property
    def final_read_done(self) -> bool:
        """The final read finished, and the cluster is settled enough to be judged.

        The end-of-run invariants read each partition's leader; judged in the middle
        of a leadership change (a broker fenced after a lost heartbeat, say) there
        would be no leader, or a new one whose high watermark has yet to catch up.
        """
        return self._final is not None and self._final.done and not self.unsettled()

    def unsettled(self) -> list[str]:
        """Why the cluster is not settled: per partition of the committed metadata,
        its leader must lead at that epoch and have replicated its whole log."""
        live = {name: n.node for name, n in self.system.live.items() if n.node is not None}
        controller = next((node for node in live.values() if node.raft.is_leader), None)
        if controller is None:
            return ["no Raft leader"]
        waiting: list[str] = []
        for (topic, partition), info in sorted(controller.image.partitions.items()):
            name = self.system.names.get(info.leader)
            node = live.get(name) if name is not None else None
            replica = node.replicas._replicas.get((topic, partition)) if node else None
            leading = replica.leader if replica is not None else None
            if replica is None or leading is None or leading.leader_epoch != info.leader_epoch:
                waiting.append(f"{topic}/{partition} has no leader at epoch {info.leader_epoch}")
            elif leading.high_watermark < replica.log.log_end_offset:
                waiting.append(
                    f"{topic}/{partition}: leader {name} has not replicated offsets "
                    f"{leading.high_watermark}..{replica.log.log_end_offset - 1}"
                )
        return waiting

    def finish(self) -> list[str]:
        assert self._shared is not None
        done = self._final is not None and self._final.done
        problems = [] if done else ["the final read did not finish"]
        problems += [f"not settled at the end: {why}" for why in self.unsettled()]
        live = self.system.live.values()
        return problems + self.system.invariants.final(live, self._shared.acked)


def topic_configs(scenario: Scenario) -> tuple[tuple[str, str], ...]:
    """The sim topic's configs beyond ``min.insync.replicas``: its retention, if any."""
    settings = scenario.settings
    if "retention_bytes" not in settings:
        return ()
    return (
        ("segment.bytes", str(settings.get("segment_bytes", 1 << 30))),
        ("retention.bytes", str(settings["retention_bytes"])),
        ("retention.ms", "-1"),
    )


def simulation_system(scenario: Scenario) -> BrokerSimHarness:
    """The harness factory ``chaos sim`` looks up (``<System module>.sim``)."""
    return BrokerSimHarness(scenario)
