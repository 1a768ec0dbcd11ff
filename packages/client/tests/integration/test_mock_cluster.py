"""Our client against librdkafka's mock cluster, and interop with confluent-kafka."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest

from rift_client import (
    Admin,
    Compression,
    Consumer,
    NewTopic,
    Producer,
    TopicPartition,
    UnsupportedVersion,
    errors,
    partition_for_key,
    sync,
)
from rift_client.compression import available

from .conftest import MockCluster

confluent_kafka = pytest.importorskip("confluent_kafka")

pytestmark = pytest.mark.integration

N = 1000


def tps(topic: str, n: int = 4) -> list[TopicPartition]:
    return [TopicPartition(topic=topic, partition=p) for p in range(n)]


async def consume_all(bootstrap: str, topic: str, want: int, **settings: object) -> list:
    async with Consumer(bootstrap, **settings) as consumer:  # type: ignore[arg-type]
        consumer.assign(tps(topic))
        got: list = []
        for _ in range(50):
            got += await consumer.poll(timeout_ms=500)
            if len(got) >= want:
                break
        return got


def test_describe_topics_and_cluster(mock_cluster: MockCluster) -> None:
    mock_cluster.create_topic("described")

    async def main() -> None:
        async with Admin(mock_cluster.bootstrap) as admin:
            brokers, _controller = await admin.describe_cluster()
            assert [b.node for b in brokers] == [1, 2, 3]
            assert "described" in await admin.list_topics()
            info = (await admin.describe_topics(["described"]))["described"]
            assert len(info.partitions) == 4
            for p in info.partitions:
                assert p.leader in (1, 2, 3)
                assert p.epoch >= 0
                assert sorted(p.replicas) == [1, 2, 3]
                assert p.leader in p.isr
            with pytest.raises(errors.KafkaError) as caught:
                await admin.describe_topics(["nope"])
            assert caught.value.code == 3
            assert caught.value.definite

    asyncio.run(main())


def test_create_topics_is_not_in_the_mock(mock_cluster: MockCluster) -> None:
    async def main() -> None:
        async with Admin(mock_cluster.bootstrap) as admin:
            result = await admin.create_topics([NewTopic(name="x", partitions=3)], timeout_ms=2000)
            assert isinstance(result["x"], UnsupportedVersion)
            assert result["x"].definite

    asyncio.run(main())


def test_idempotent_keyed_round_trip_with_offsets(mock_cluster: MockCluster) -> None:
    topic = "roundtrip"
    mock_cluster.create_topic(topic)

    async def main() -> None:
        async with Producer(mock_cluster.bootstrap, acks="all", idempotent=True) as producer:
            assert producer.producer_id >= 0
            futures = [
                await producer.enqueue(
                    topic, b"value-%d" % i, key=b"key-%d" % (i % 37), headers=[("i", b"%d" % i)]
                )
                for i in range(N)
            ]
            reports = await asyncio.gather(*futures)
        assert all(r.ok and r.definite and r.status == "ok" for r in reports)
        for i, r in enumerate(reports):
            assert r.partition == partition_for_key(b"key-%d" % (i % 37), 4)
        # offsets per partition are contiguous and in send order
        by_part = defaultdict(list)
        for r in reports:
            by_part[r.partition].append(r.offset)
        for p, offsets in by_part.items():
            start = 1 if p == 0 else 0  # the marker record
            assert offsets == list(range(start, start + len(offsets)))

        async with Admin(mock_cluster.bootstrap) as admin:
            latest = await admin.list_offsets(tps(topic), spec="latest")
            earliest = await admin.list_offsets(tps(topic), spec="earliest")
        assert set(earliest.values()) == {0}
        assert sum(latest.values()) == N + 1

        got = await consume_all(mock_cluster.bootstrap, topic, N + 1)
        assert len(got) == N + 1
        mine = [r for r in got if r.value != b"marker"]
        for p in range(4):
            offsets = [r.offset for r in got if r.partition == p]
            assert offsets == sorted(offsets) == list(range(len(offsets)))
        by_value = {r.value: r for r in mine}
        for i in range(N):
            record = by_value[b"value-%d" % i]
            assert record.key == b"key-%d" % (i % 37)
            assert record.headers == (("i", b"%d" % i),)
            assert record.timestamp_ms > 0

    asyncio.run(main())


def test_confluent_reads_what_we_wrote(mock_cluster: MockCluster) -> None:
    topic = "ours"
    mock_cluster.create_topic(topic)

    async def produce() -> None:
        async with Producer(mock_cluster.bootstrap, compression="gzip") as producer:
            futures = [
                await producer.enqueue(topic, b"v%d" % i, key=b"k%d" % i, headers=[("h", b"x")])
                for i in range(200)
            ]
            assert all(r.ok for r in await asyncio.gather(*futures))

    asyncio.run(produce())
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": mock_cluster.bootstrap,
            "group.id": "g",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "log_level": 3,
        }
    )
    consumer.assign([confluent_kafka.TopicPartition(topic, p, 0) for p in range(4)])
    seen = {}
    for _ in range(40):
        for msg in consumer.consume(num_messages=500, timeout=0.5):
            if msg.error() is None and msg.value() != b"marker":
                seen[msg.key()] = (msg.value(), msg.headers(), msg.partition())
        if len(seen) == 200:
            break
    consumer.close()
    assert len(seen) == 200
    for i in range(200):
        assert seen[b"k%d" % i] == (b"v%d" % i, [("h", b"x")], partition_for_key(b"k%d" % i, 4))


@pytest.mark.parametrize(
    "codec", [c.name.lower() for c in sorted(available()) if c is not Compression.NONE]
)
def test_we_read_what_confluent_wrote(mock_cluster: MockCluster, codec: str) -> None:
    topic = f"theirs-{codec}"
    producer = confluent_kafka.Producer(
        {
            "bootstrap.servers": mock_cluster.bootstrap,
            "compression.type": codec,
            "partitioner": "murmur2_random",  # the Java client's partitioner
            "enable.idempotence": True,
            "linger.ms": 5,
            "log_level": 3,
        }
    )
    for i in range(300):
        producer.produce(topic, b"v%d" % i, key=b"k%d" % i, headers=[("n", b"%d" % i)])
    assert producer.flush(10) == 0

    got = asyncio.run(consume_all(mock_cluster.bootstrap, topic, 300))
    assert len(got) == 300
    for r in got:
        i = int(r.value[1:])
        assert r.key == b"k%d" % i
        assert r.headers == (("n", b"%d" % i),)
        assert r.partition == partition_for_key(r.key, 4)  # same key, same partition


@pytest.mark.parametrize("codec", sorted(available()))
def test_our_compressed_batches_round_trip(mock_cluster: MockCluster, codec: Compression) -> None:
    topic = f"codec-{codec.name.lower()}"
    mock_cluster.create_topic(topic)

    async def main() -> None:
        async with Producer(mock_cluster.bootstrap, compression=codec, linger_ms=20) as producer:
            futures = [await producer.enqueue(topic, b"x" * 100 + b"%d" % i) for i in range(300)]
            assert all(r.ok for r in await asyncio.gather(*futures))
        got = await consume_all(mock_cluster.bootstrap, topic, 301)
        assert sorted(r.value for r in got if r.value != b"marker") == sorted(
            b"x" * 100 + b"%d" % i for i in range(300)
        )

    asyncio.run(main())


@pytest.mark.parametrize("acks", [0, 1])
def test_non_idempotent_acks(mock_cluster: MockCluster, acks: int) -> None:
    topic = f"acks{acks}"
    mock_cluster.create_topic(topic)

    async def main() -> None:
        async with Producer(mock_cluster.bootstrap, acks=acks, idempotent=False) as producer:
            report = await producer.send(topic, b"v", key=b"k")
        if acks == 0:
            assert report.status == "info"  # nobody told us
        else:
            assert report.status == "ok"
            assert report.offset >= 0
        got = await consume_all(mock_cluster.bootstrap, topic, 2)
        assert b"v" in [r.value for r in got]

    asyncio.run(main())


def test_unknown_topic_is_a_definite_failure(mock_cluster: MockCluster) -> None:
    async def main() -> None:
        settings = {"request_timeout_ms": 500, "delivery_timeout_ms": 1000}
        async with Producer(mock_cluster.bootstrap, **settings) as producer:
            report = await producer.send("does-not-exist", b"v")
        assert report.status == "fail"
        assert isinstance(report.error, errors.KafkaError)
        assert report.error.code == 3

    asyncio.run(main())


def test_seek_and_offset_reset(mock_cluster: MockCluster) -> None:
    topic = "seeking"
    mock_cluster.create_topic(topic)
    tp0 = TopicPartition(topic=topic, partition=0)

    async def main() -> None:
        async with Producer(mock_cluster.bootstrap) as producer:
            for i in range(10):
                assert (await producer.send(topic, b"%d" % i, partition=0)).ok
        async with Consumer(mock_cluster.bootstrap, auto_offset_reset="latest") as consumer:
            consumer.assign([tp0])
            assert await consumer.position(tp0) == 11
            consumer.seek(tp0, 5)
            got: list = []
            for _ in range(20):  # the mock answers one batch per fetch
                got += await consumer.poll(timeout_ms=500)
                if len(got) >= 6:
                    break
            assert [r.offset for r in got] == list(range(5, 11))
            await consumer.seek_to_beginning()
            assert await consumer.position(tp0) == 0
            consumer.seek(tp0, 1000)  # out of range: reset to latest
            assert await consumer.poll(timeout_ms=1000) == []
            assert await consumer.position(tp0) == 11
        async with Consumer(mock_cluster.bootstrap, auto_offset_reset="none") as consumer:
            consumer.assign([tp0])
            consumer.seek(tp0, 1000)
            with pytest.raises(errors.KafkaError) as caught:
                await consumer.poll(timeout_ms=1000)
            assert caught.value.code == 1
            assert caught.value.definite

    asyncio.run(main())


def test_sync_facade(mock_cluster: MockCluster) -> None:
    topic = "sync"
    mock_cluster.create_topic(topic)
    with sync.Producer(mock_cluster.bootstrap) as producer:
        report = producer.send(topic, b"hello", key=b"k", headers=[("a", b"b")])
        assert report.ok
        assert report.definite
        reports = producer.send_many(topic, [(b"k%d" % i, b"v%d" % i) for i in range(50)])
        assert all(r.ok for r in reports)
    with sync.Admin(mock_cluster.bootstrap) as admin:
        assert topic in admin.list_topics()
        latest = admin.list_offsets(tps(topic), spec="latest")
        assert sum(latest.values()) == 52
    with sync.Consumer(mock_cluster.bootstrap) as consumer:
        consumer.assign(tps(topic))
        got = []
        for _ in range(20):
            got += consumer.poll(timeout_ms=500)
            if len(got) >= 52:
                break
        assert len(got) == 52
        hello = next(r for r in got if r.value == b"hello")
        assert hello.key == b"k"
        assert hello.headers == (("a", b"b"),)
