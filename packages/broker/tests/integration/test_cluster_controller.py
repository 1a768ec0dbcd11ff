"""SIGKILL the active controller (the Raft leader): another node takes over, and
partition leadership keeps working — a partition whose leader dies afterwards
fails over under the new controller."""

from __future__ import annotations

import pytest

from rift_broker.cluster.dev import LocalCluster, wait_until
from rift_client import TopicInfo, sync

pytestmark = pytest.mark.integration

TOPIC = "ctl"
PARTITIONS = 3


def controller_of(bootstrap: str) -> int:
    with sync.Admin(bootstrap, request_timeout_ms=3000) as admin:
        _, controller = admin.describe_cluster()
    return int(controller)


def topic(bootstrap: str) -> TopicInfo:
    with sync.Admin(bootstrap, request_timeout_ms=3000) as admin:
        info: TopicInfo = admin.describe_topics([TOPIC])[TOPIC]
    return info


def produce_everywhere(bootstrap: str, tag: str) -> None:
    """One acks=all record to every partition; each must be acknowledged."""
    with sync.Producer(
        bootstrap, acks="all", idempotent=True, request_timeout_ms=5000, delivery_timeout_ms=30_000
    ) as producer:
        for p in range(PARTITIONS):
            report = producer.send(TOPIC, f"{tag}-{p}".encode(), partition=p)
            assert report.ok, report


def test_controller_failover_keeps_partition_leadership_working(cluster: LocalCluster) -> None:
    with sync.Admin(cluster.bootstrap, request_timeout_ms=10_000) as admin:
        admin.create_topic(
            TOPIC,
            partitions=PARTITIONS,
            replication_factor=3,
            configs={"min.insync.replicas": "2"},
        )
        admin.wait_for_leaders(TOPIC, timeout_ms=30_000)
    wait_until(
        "full ISRs", lambda: all(len(p.isr) == 3 for p in topic(cluster.bootstrap).partitions)
    )
    produce_everywhere(cluster.bootstrap, "before")

    old = wait_until("a controller", lambda: (c := controller_of(cluster.bootstrap)) > 0 and c)
    before = {p.partition: p for p in topic(cluster.bootstrap).partitions}
    cluster.kill(old)
    rest = [i for i in cluster.nodes if i != old]
    survivors = ",".join(cluster.nodes[i].bootstrap for i in rest)
    new = wait_until(
        "a new controller",
        lambda: (c := controller_of(survivors)) in rest and c,
        within_s=30,
    )
    assert new != old
    # The partitions the old controller led fail over too (it was also a broker).
    wait_until(
        "every partition led by a live node",
        lambda: all(p.leader in rest for p in topic(survivors).partitions),
    )
    for p in topic(survivors).partitions:
        if before[p.partition].leader == old:
            assert p.epoch > before[p.partition].epoch, (before[p.partition], p)
    produce_everywhere(survivors, "after-controller")

    # Bring the old controller back (two of three nodes must stay up for a quorum),
    # then kill a partition leader: the new controller moves that partition.
    cluster.restart(old)
    cluster.wait_registered(timeout_s=60)
    wait_until(
        "full ISRs again",
        lambda: all(len(p.isr) == 3 for p in topic(cluster.bootstrap).partitions),
        within_s=60,
    )
    victim_partition = topic(cluster.bootstrap).partitions[0]
    victim = victim_partition.leader
    cluster.kill(victim)
    alive = ",".join(n.bootstrap for i, n in cluster.nodes.items() if i != victim)
    moved = wait_until(
        "partition 0 failed over",
        lambda: (p := topic(alive).partitions[0]).leader not in (-1, victim) and p,
        within_s=30,
    )
    assert moved.epoch > victim_partition.epoch
    assert controller_of(alive) in [i for i in cluster.nodes if i != victim]
    produce_everywhere(alive, "after-leader")
