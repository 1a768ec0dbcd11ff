"""Consumer groups on a 3-node cluster of real `broker serve` processes.

``__consumer_offsets`` is replicated like any topic, so a group's committed offsets
survive the loss of its coordinator: SIGKILL the node leading the group's offsets
partition, and the next coordinator (elected from the ISR) serves every offset
committed before, to our client and to kafka-python alike; the group then resumes
from them and reads every later record exactly once.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rift_broker.cluster import dev
from rift_broker.cluster.dev import LocalCluster, running_cluster
from rift_broker.group import OFFSETS_TOPIC, partition_for
from rift_client import NewTopic, TopicPartition, sync

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

TOPIC = "orders"
PARTITIONS = 6
OFFSETS_PARTITIONS = 6
GROUP = "cluster-group"
TPS = [TopicPartition(topic=TOPIC, partition=p) for p in range(PARTITIONS)]


wait_until = functools.partial(dev.wait_until, within_s=60.0, every_s=0.2)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    with running_cluster(
        nodes=3,
        directory=tmp_path,
        session_timeout_ms=2000,
        election_timeout_ms=300,
        replica_lag_time_max_ms=3000,
        extra_args=(
            "--offsets-partitions",
            str(OFFSETS_PARTITIONS),
            "--group-initial-rebalance-delay-ms",
            "300",
        ),
    ) as c:
        with sync.Admin(c.bootstrap, request_timeout_ms=10_000) as admin:
            admin.create_topics(
                [
                    NewTopic(
                        name=TOPIC,
                        partitions=PARTITIONS,
                        replication_factor=3,
                        configs=(("min.insync.replicas", "2"),),
                    )
                ]
            )
            admin.wait_for_leaders(TOPIC, timeout_ms=30_000)
        yield c


def produce(bootstrap: str, values: range) -> None:
    with sync.Producer(bootstrap, acks="all", idempotent=True) as producer:
        reports = [producer.send(TOPIC, str(v).encode(), partition=v % PARTITIONS) for v in values]
    assert all(r.ok for r in reports), [r.error for r in reports if not r.ok][:3]


def consume_as_group(bootstrap: str, *, members: int, expect: int) -> list[int]:
    """``members`` consumers of GROUP read until ``expect`` records came; each
    commits what it read, then leaves. Returns every value read, in any order."""
    consumers = [
        sync.Consumer(
            bootstrap,
            group_id=GROUP,
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
            request_timeout_ms=5000,
        )
        for _ in range(members)
    ]
    seen: list[int] = []
    try:
        for c in consumers:
            c.subscribe([TOPIC])
        deadline = time.monotonic() + 90
        while len(seen) < expect:
            assert time.monotonic() < deadline, f"read {len(seen)} of {expect}"
            for c in consumers:
                seen.extend(int(r.value or b"-1") for r in c.poll(timeout_ms=200))
        owned = sorted(len(c.assignment()) for c in consumers)
        assert owned == [PARTITIONS // members] * members, owned
        for c in consumers:
            wait_until("a commit", lambda c=c: c.commit() is None, within_s=30)
    finally:
        for c in consumers:
            c.close()
    return seen


def coordinator_of(cluster: LocalCluster) -> int:
    index = partition_for(GROUP, OFFSETS_PARTITIONS)
    with sync.Admin(cluster.bootstrap, request_timeout_ms=5000) as admin:
        info = admin.describe_topics([OFFSETS_TOPIC])[OFFSETS_TOPIC]
    (leader,) = [p.leader for p in info.partitions if p.partition == index]
    return leader


def committed(bootstrap: str) -> dict[TopicPartition, int | None]:
    with sync.Consumer(bootstrap, group_id=GROUP, request_timeout_ms=5000) as c:
        return c.committed(TPS)


def test_offsets_survive_a_coordinator_failover(cluster: LocalCluster) -> None:
    produce(cluster.bootstrap, range(600))
    first = consume_as_group(cluster.bootstrap, members=3, expect=600)
    assert sorted(first) == list(range(600)), "steady state: every record exactly once"
    before = committed(cluster.bootstrap)
    assert before == {tp: 100 for tp in TPS}

    old = coordinator_of(cluster)
    cluster.kill(old)
    survivors = ",".join(n.bootstrap for i, n in cluster.nodes.items() if i != old)
    wait_until("a new coordinator", lambda: coordinator_of(cluster) != old)
    wait_until(
        "the committed offsets from the new coordinator", lambda: committed(survivors) == before
    )

    # kafka-python asks the new coordinator too, with the Kafka protocol only.
    kafka = pytest.importorskip("kafka")
    consumer = kafka.KafkaConsumer(
        bootstrap_servers=survivors.split(","), group_id=GROUP, enable_auto_commit=False
    )
    try:
        seen_by_kafka = {
            tp.partition: consumer.committed(kafka.TopicPartition(TOPIC, tp.partition))
            for tp in TPS
        }
    finally:
        consumer.close()
    assert seen_by_kafka == {p: 100 for p in range(PARTITIONS)}

    # The group resumes from the committed offsets: later records, each exactly once.
    produce(survivors, range(600, 900))
    second = consume_as_group(survivors, members=2, expect=300)
    assert sorted(second) == list(range(600, 900))
    assert committed(survivors) == {tp: 150 for tp in TPS}

    # The old coordinator comes back as a follower; the offsets stay where they are.
    cluster.restart(old)
    wait_until(
        "the restarted node back in the offsets partition's ISR",
        lambda: all(
            old in p.isr
            for p in sync_describe(cluster.bootstrap, OFFSETS_TOPIC).partitions
            if old in p.replicas
        ),
    )
    assert committed(cluster.bootstrap) == {tp: 150 for tp in TPS}

    # Only the coordinators write the offsets topic: a client's produce is refused.
    with sync.Producer(cluster.bootstrap, acks="all", request_timeout_ms=5000) as producer:
        report = producer.send(OFFSETS_TOPIC, b"junk", partition=0)
    assert not report.ok, report
    assert report.definite, report
    assert report.error is not None, report
    assert report.error.code == 17, report


def sync_describe(bootstrap: str, topic: str) -> Any:
    with sync.Admin(bootstrap, request_timeout_ms=5000) as admin:
        return admin.describe_topics([topic])[topic]
