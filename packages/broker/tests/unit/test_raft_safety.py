"""Raft's safety properties at every step of many seeded fault schedules.

Each seed draws a cluster size, a configuration and a network (delay, loss,
duplication), then runs a random schedule of grudges, heals, crashes, restarts
and proposals. ``SimCluster`` checks safety after every step; after the faults
stop, the cluster must elect a leader and commit everywhere within bounded
virtual time (liveness in benign conditions).
"""

from __future__ import annotations

import hashlib
import random

import pytest

from rift_broker.raft import RaftConfig, Role
from rift_broker.raft.testing import SimCluster

SEEDS = 200
STEPS = 3000


def make_cluster(seed: int) -> SimCluster:
    rng = random.Random(seed)
    config = RaftConfig(
        election_timeout_ms=150,
        heartbeat_interval_ms=30,
        max_entries_per_message=rng.choice([1, 3, 64]),
        snapshot_threshold=rng.choice([0, 4, 16, 64]),
        pre_vote=rng.random() < 0.8,
        check_quorum=rng.random() < 0.8,
    )
    return SimCluster(
        rng.choice([1, 2, 3, 3, 5, 5]),
        rng,
        config=config,
        max_delay_ms=rng.choice([5, 20, 60]),
        loss=rng.choice([0.0, 0.05, 0.2]),
        duplicate=rng.choice([0.0, 0.05, 0.2]),
    )


def heal_and_settle(cluster: SimCluster, *, within_ms: int = 30_000) -> bool:
    cluster.heal()
    cluster.loss = cluster.duplicate = 0.0
    for node_id, node in list(cluster.nodes.items()):
        if node is None:
            cluster.restart(node_id)

    def settled() -> bool:
        leader = cluster.leader()
        return leader is not None and all(
            n.commit_index == leader.log.last_index and n.term == leader.term
            for n in cluster.live()
        )

    return cluster.run_until(settled, within_ms=within_ms)


def applied_everywhere(cluster: SimCluster, index: int) -> bool:
    return all(n.applied_index >= index for n in cluster.live())


def run_seed(seed: int) -> None:
    cluster = make_cluster(seed)
    faults = random.Random(seed).choice([0.005, 0.02, 0.05, 0.1])
    for _ in range(STEPS):
        cluster.random_step(faults=faults, proposals=0.25)
    assert heal_and_settle(cluster), f"seed {seed}: no stable leader after healing"
    # Once settled, a new proposal commits and is applied by every node.
    leader = cluster.leader()
    assert leader is not None
    proposed = cluster.propose(leader.node_id, b"final")
    assert isinstance(proposed, int)
    index: int = proposed
    assert cluster.run_until(lambda: applied_everywhere(cluster, index), within_ms=5_000), (
        f"seed {seed}: final proposal not applied everywhere"
    )
    states = {tuple(cluster.state[n.node_id]) for n in cluster.live()}
    assert len(states) == 1, f"seed {seed}: state machines differ"
    # Nothing ever committed was lost, however many crashes it went through.
    final = cluster.state[leader.node_id]
    for index, entry in cluster.checker.committed.items():
        assert final[index - 1] == entry.command, f"seed {seed}: committed {entry} lost"


@pytest.mark.parametrize("chunk", range(10))
def test_safety_under_random_faults(chunk: int) -> None:
    per_chunk = SEEDS // 10
    for seed in range(chunk * per_chunk, (chunk + 1) * per_chunk):
        run_seed(seed)


def elect_and_commit(seed: int) -> None:
    rng = random.Random(seed)
    cluster = SimCluster(rng.choice([1, 3, 5]), rng)
    assert cluster.run_until(lambda: cluster.leader() is not None, within_ms=3_000)
    leader = cluster.leader()
    assert leader is not None
    index = cluster.propose(leader.node_id, b"x")
    assert isinstance(index, int)
    assert cluster.run_until(lambda: applied_everywhere(cluster, index), within_ms=1_000)
    assert sum(n.role is Role.LEADER for n in cluster.live()) == 1


@pytest.mark.parametrize("seed", range(50))
def test_a_leader_is_elected_and_commits_in_benign_conditions(seed: int) -> None:
    elect_and_commit(seed)


def trace(seed: int) -> str:
    cluster = make_cluster(seed)
    digest = hashlib.sha256()
    for _ in range(500):
        cluster.random_step(faults=0.05)
        digest.update(
            repr((cluster.now, [(n.term, n.role, n.commit_index) for n in cluster.live()])).encode()
        )
    return digest.hexdigest()


def test_same_seed_same_trace() -> None:
    assert trace(7) == trace(7)
    assert trace(7) != trace(8)
