"""Retention in a 3-node cluster of real `broker serve` processes.

Small segments, a small ``--retention-bytes`` and a short maintenance interval: an
acks=all producer rolls many segments. Every replica deletes its old segment files,
the leader's earliest offset moves forward, and a consumer from the earliest offset
reads everything from there to the end without a gap. A follower killed while the
leader's retention deletes past its end restarts its log at the leader's log start
and catches up (back in the ISR, holding the same batches as the leader).
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import pytest

from rift_broker.chaos_plugin._client import KAFKA_PORT, BrokerClient
from rift_broker.cluster import dev
from rift_broker.cluster.dev import LocalCluster, read_partition_log
from rift_broker.records import iter_batches
from rift_chaos.op import Op, OpType
from rift_chaos.remote import Node
from rift_chaos.system import SystemSettings
from rift_client import PartitionInfo, TopicPartition, sync

TOPIC = "retained"
TP = TopicPartition(topic=TOPIC, partition=0)
SEGMENT_BYTES = 2048
RETENTION_BYTES = 8192
VALUE = b"." * 150

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(120),
    pytest.mark.cluster(
        replica_lag_time_max_ms=1500,
        extra_args=(
            "--segment-bytes",
            str(SEGMENT_BYTES),
            "--retention-bytes",
            str(RETENTION_BYTES),
            "--maintenance-interval-s",
            "0.3",
        ),
        registered_within_s=30,
    ),
]


wait_until = functools.partial(dev.wait_until, within_s=20.0)


def describe(bootstrap: str) -> PartitionInfo:
    with sync.Admin(bootstrap, request_timeout_ms=3000) as admin:
        info: PartitionInfo = admin.describe_topics([TOPIC])[TOPIC].partitions[0]
    return info


def offsets(bootstrap: str) -> tuple[int, int]:
    """(earliest, latest) as the leader answers ListOffsets."""
    with sync.Admin(bootstrap, request_timeout_ms=3000) as admin:
        earliest = admin.list_offsets([TP], spec="earliest")[TP]
        latest = admin.list_offsets([TP], spec="latest")[TP]
    return earliest, latest


def segment_bases(data_dir: Path) -> list[int]:
    return sorted(int(p.stem) for p in (data_dir / f"{TOPIC}-0").glob("*.log"))


def produce(bootstrap: str, first: int, count: int) -> dict[int, bytes]:
    """acks=all, idempotent; every record acknowledged. Offset -> value."""
    acked: dict[int, bytes] = {}
    with sync.Producer(
        bootstrap, acks="all", idempotent=True, linger_ms=2, request_timeout_ms=5000
    ) as producer:
        for start in range(first, first + count, 20):
            values = [b"v%05d" % i + VALUE for i in range(start, min(start + 20, first + count))]
            reports = producer.send_many(TOPIC, [(None, v) for v in values])
            assert all(r.ok for r in reports), [r for r in reports if not r.ok][:3]
            acked.update((r.offset, v) for r, v in zip(reports, values, strict=True))
    return acked


def read_from_earliest(bootstrap: str, end: int) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    with sync.Consumer(bootstrap, request_timeout_ms=5000) as consumer:
        consumer.assign([TP])
        consumer.seek_to_beginning(TP)
        deadline = time.monotonic() + 20
        while not out or out[-1][0] < end - 1:
            assert time.monotonic() < deadline, f"read {len(out)} records, up to {end} wanted"
            out.extend((r.offset, r.value or b"") for r in consumer.poll(timeout_ms=500))
    return out


def batches_by_offset(data: bytes) -> dict[int, bytes]:
    return {h.base_offset: data[p : p + h.size] for p, h in iter_batches(data)}


def final_read(cluster: LocalCluster) -> dict[str, Any]:
    """A ``final-read`` op of the toolkit's client for this broker; its ok value."""
    settings = SystemSettings(topic=TOPIC, partitions=1)
    nodes = [
        Node(name=f"n{i}", host="127.0.0.1", index=i, port_offset=n.port - KAFKA_PORT)
        for i, n in enumerate(cluster.nodes.values())
    ]
    client = BrokerClient(settings=settings, nodes=nodes)
    client.open(nodes[0], timeout=5.0)
    try:
        done = client.invoke(Op(type=OpType.INVOKE, f="final-read", process=0, value=None))
    finally:
        client.close()
    assert done.type == OpType.OK, done
    value: dict[str, Any] = done.value
    return value


def test_every_replica_applies_retention_and_a_lagging_follower_catches_up(
    cluster: LocalCluster,
) -> None:
    with sync.Admin(cluster.bootstrap, request_timeout_ms=10_000) as admin:
        admin.create_topic(
            TOPIC, partitions=1, replication_factor=3, configs={"min.insync.replicas": "2"}
        )
        admin.wait_for_leaders(TOPIC, timeout_ms=20_000)
    wait_until("a full ISR", lambda: len(describe(cluster.bootstrap).isr) == 3)
    leader = describe(cluster.bootstrap).leader
    follower, other = (n for n in cluster.nodes if n != leader)

    acked = produce(cluster.bootstrap, 0, 300)
    # Every replica rolls and deletes: segment 0 is gone from each data directory.
    for node in cluster.nodes.values():
        data_dir = node.data_dir
        wait_until(
            f"node {node.node_id} deleting old segments",
            lambda: segment_bases(data_dir)[0] > 0,  # noqa: B023 - used at once
        )
    earliest, latest = offsets(cluster.bootstrap)
    assert 0 < earliest < latest == 300

    # A follower is killed; the leader's retention deletes past its end meanwhile.
    cluster.kill(follower)
    killed_end = offsets(cluster.bootstrap)[1]  # the follower held no more than this
    acked.update(produce(cluster.bootstrap, 300, 300))
    wait_until(
        "the leader's log start passing the killed follower's end",
        lambda: offsets(cluster.bootstrap)[0] > killed_end,
    )
    assert describe(cluster.bootstrap).leader == leader
    cluster.restart(follower)
    wait_until(
        f"node {follower} back in the ISR",
        lambda: follower in describe(cluster.bootstrap).isr,
        within_s=30,
    )
    # It could not keep anything: it restarted its log at the leader's log start.
    assert segment_bases(cluster.nodes[follower].data_dir)[0] > killed_end

    # A consumer from the earliest offset reads everything from there, in order.
    earliest, latest = offsets(cluster.bootstrap)
    assert latest == 600
    assert earliest > killed_end
    records = [(o, v) for o, v in read_from_earliest(cluster.bootstrap, latest) if o < latest]
    assert [o for o, _ in records] == list(range(records[0][0], latest)), "a gap or a repeat"
    assert records[0][0] <= earliest + 20  # from (about) the start: retention may run on
    assert all(acked[o] == v for o, v in records), "a record differs from the one acknowledged"
    # Below the start, a consumer gets OFFSET_OUT_OF_RANGE and resets to the earliest.
    with sync.Consumer(cluster.bootstrap, request_timeout_ms=5000) as consumer:
        consumer.assign([TP])
        consumer.seek(TP, 0)
        polled = wait_until(
            "records after an out-of-range seek", lambda: consumer.poll(timeout_ms=500)
        )
        assert polled[0].offset >= earliest

    # The toolkit's final read reports the log start: what lies below it was deleted.
    final = final_read(cluster)
    read = [o for o, _ in final["records"][f"{TOPIC}/0"]]
    assert read == list(range(read[0], latest))
    # Asked for after the read: retention may have moved on since the read began.
    assert list(final["log-start"]) == [f"{TOPIC}/0"]
    assert earliest <= read[0] <= final["log-start"][f"{TOPIC}/0"] < latest

    # Stopped cleanly, the replicas hold the same batches where their logs overlap.
    codes = cluster.stop(timeout_s=20)
    assert all(code == 0 for code in codes.values()), codes
    logs = {
        n: batches_by_offset(read_partition_log(node.data_dir, TOPIC, 0))
        for n, node in cluster.nodes.items()
    }
    common = set(logs[leader]).intersection(logs[follower], logs[other])
    assert common, {n: (min(b), max(b)) for n, b in logs.items()}
    assert max(common) == max(logs[leader])  # every replica reaches the end
    for offset in common:
        assert logs[leader][offset] == logs[follower][offset] == logs[other][offset], offset
    assert all(min(b) > 0 for b in logs.values())
