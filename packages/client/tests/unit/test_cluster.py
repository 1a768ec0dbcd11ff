"""The metadata cache, fed kio responses directly (no sockets)."""

from __future__ import annotations

import pytest
from kio.schema.errors import ErrorCode
from kio.schema.metadata.v8 import response as md

from rift_client import protocol
from rift_client.cluster import Cluster, parse_bootstrap
from rift_client.errors import InvalidArgument
from rift_client.types import TopicPartition


def test_parse_bootstrap() -> None:
    assert parse_bootstrap("a:1, b:2") == [("a", 1), ("b", 2)]
    assert parse_bootstrap(["[::1]:9092"]) == [("::1", 9092)]
    for bad in ("nohost", "h:port", ":9", ""):
        with pytest.raises(InvalidArgument):
            parse_bootstrap(bad)


def metadata(leader: int, epoch: int, *, topic_error: int = 0) -> md.MetadataResponse:
    partitions = tuple(
        md.MetadataResponsePartition(
            error_code=ErrorCode.none,
            partition_index=p,
            leader_id=leader,
            leader_epoch=epoch,
            replica_nodes=(1, 2, 3),
            isr_nodes=(leader, 3),
            offline_replicas=(),
        )
        for p in (1, 0)  # out of order on purpose
    )
    return md.MetadataResponse(
        throttle_time=protocol.duration(0),
        brokers=tuple(
            md.MetadataResponseBroker(node_id=n, host="127.0.0.1", port=9000 + n, rack=None)
            for n in (1, 2, 3)
        ),
        cluster_id="c",
        controller_id=2,
        topics=(
            md.MetadataResponseTopic(
                error_code=ErrorCode(topic_error),
                name="t",
                is_internal=False,
                partitions=partitions if not topic_error else (),
            ),
        ),
    )


async def _cluster() -> Cluster:
    return Cluster("127.0.0.1:9001")


def test_apply_and_leader_lookup() -> None:
    import asyncio

    cluster = asyncio.run(_cluster())
    cluster._apply(metadata(leader=1, epoch=4), full=False)
    assert sorted(cluster.brokers) == [1, 2, 3]
    assert cluster.controller == 2
    p1 = cluster.leader(TopicPartition(topic="t", partition=1))
    assert p1 is not None
    assert (p1.partition, p1.leader, p1.epoch, p1.isr) == (1, 1, 4, (1, 3))
    assert cluster.leader(TopicPartition(topic="t", partition=2)) is None
    assert cluster.leader(TopicPartition(topic="u", partition=0)) is None
    # a newer answer moves the leader and bumps the epoch
    cluster._apply(metadata(leader=2, epoch=5), full=False)
    p0 = cluster.leader(TopicPartition(topic="t", partition=0))
    assert p0 is not None
    assert (p0.leader, p0.epoch) == (2, 5)
    # a deleted topic is forgotten
    cluster._apply(metadata(leader=2, epoch=5, topic_error=3), full=False)
    assert "t" not in cluster.topics
