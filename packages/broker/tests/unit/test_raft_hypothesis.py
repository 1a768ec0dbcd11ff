"""Hypothesis drives the simulated cluster: it chooses the faults and the
proposals, the cluster's seeded rng chooses delays, loss and timeouts. The model
is a list: every node's applied commands are a prefix of one common sequence."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from rift_broker.raft import RaftConfig
from rift_broker.raft.testing import SimCluster

NODES = st.integers(min_value=1, max_value=5)


class RaftClusterMachine(RuleBasedStateMachine):
    cluster: SimCluster

    @initialize(
        size=st.sampled_from([3, 5]),
        seed=st.integers(min_value=0, max_value=2**32 - 1),
        batch=st.sampled_from([1, 64]),
        loss=st.sampled_from([0.0, 0.1]),
    )
    def start(self, size: int, seed: int, batch: int, loss: float) -> None:
        config = RaftConfig(
            election_timeout_ms=150,
            heartbeat_interval_ms=30,
            max_entries_per_message=batch,
            snapshot_threshold=8,
        )
        self.cluster = SimCluster(
            size, random.Random(seed), config=config, loss=loss, duplicate=0.1
        )
        self.proposed = 0

    @rule(steps=st.integers(min_value=1, max_value=40))
    def advance(self, steps: int) -> None:
        for _ in range(steps):
            self.cluster.advance()

    @rule(node=NODES)
    def propose(self, node: int) -> None:
        if node in self.cluster.ids:
            self.proposed += 1
            self.cluster.propose(node, b"p%d" % self.proposed)

    @rule()
    def propose_to_leader(self) -> None:
        leader = self.cluster.leader()
        if leader is not None:
            self.proposed += 1
            self.cluster.propose(leader.node_id, b"p%d" % self.proposed)

    @rule(links=st.sets(st.tuples(NODES, NODES)))
    def grudge(self, links: set[tuple[int, int]]) -> None:
        self.cluster.grudge = {(a, b) for a, b in links if a != b}

    @rule(node=NODES)
    def isolate(self, node: int) -> None:
        self.cluster.partition([i for i in self.cluster.ids if i != node])

    @rule()
    def heal(self) -> None:
        self.cluster.heal()

    @precondition(lambda self: len(self.cluster.live()) > 1)
    @rule(node=NODES)
    def crash(self, node: int) -> None:
        if self.cluster.nodes.get(node) is not None:
            self.cluster.crash(node)

    @rule(node=NODES)
    def restart(self, node: int) -> None:
        if node in self.cluster.ids and self.cluster.nodes[node] is None:
            self.cluster.restart(node)

    @invariant()
    def applied_states_are_prefixes_of_one_sequence(self) -> None:
        states = sorted(self.cluster.state.values(), key=len)
        if states:
            longest = states[-1]
            for state in states:
                assert longest[: len(state)] == state

    def teardown(self) -> None:
        cluster = self.cluster
        cluster.heal()
        cluster.loss = cluster.duplicate = 0.0
        for node_id, node in list(cluster.nodes.items()):
            if node is None:
                cluster.restart(node_id)

        def settled() -> bool:
            leader = cluster.leader()
            return leader is not None and all(
                n.commit_index == leader.log.last_index for n in cluster.live()
            )

        assert cluster.run_until(settled, within_ms=30_000)
        leader = cluster.leader()
        assert leader is not None
        last = leader.log.last_index
        assert cluster.run_until(
            lambda: all(n.applied_index >= last for n in cluster.live()), within_ms=1_000
        )
        for node in cluster.live():  # every node applied everything: nothing lost
            state = cluster.state[node.node_id]
            for index, entry in cluster.checker.committed.items():
                assert state[index - 1] == entry.command


TestRaftCluster = RaftClusterMachine.TestCase
TestRaftCluster.settings = settings(
    max_examples=150,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**64), size=st.sampled_from([2, 3, 4, 5]))
def test_random_schedules_from_hypothesis_seeds(seed: int, size: int) -> None:
    cluster = SimCluster(size, random.Random(seed), loss=0.1, duplicate=0.1, max_delay_ms=40)
    for _ in range(600):
        cluster.random_step(faults=0.03, proposals=0.2)
