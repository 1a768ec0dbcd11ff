"""kafka-python, aiokafka, confluent-kafka and rift_client against a real broker on loopback.

Each client creates a topic with several partitions, produces 10,000 keyed records
with headers (acks=all, idempotent where it can), consumes them all back and checks
that every partition holds exactly what was sent to it, in send order, with the same
keys, values and headers; then it lists the earliest and latest offsets. Compressed
batches go through untouched for every codec the client has.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from rift_broker.server import Broker, BrokerConfig
from rift_broker.server.testing import BrokerThread

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(300),
    # The clients use APIs their dependencies deprecated; not our concern here.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

N = 10_000
PARTITIONS = 4
Record = tuple[bytes, bytes, tuple[tuple[str, bytes], ...]]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerThread]:
    with BrokerThread(BrokerConfig(data_dir=tmp_path / "data", port=0)) as running:
        yield running


def _records(n: int, tag: str) -> list[Record]:
    return [
        (
            f"key-{i % 97}".encode(),
            f"{tag}-value-{i}".encode() * (1 + i % 3),
            (("n", str(i).encode()), ("tag", tag.encode())),
        )
        for i in range(n)
    ]


def _stored_codecs(broker: BrokerThread, topic: str) -> set[str]:
    """The compression of every batch as stored: proof that batches were kept as sent."""
    from rift_broker.records import iter_batches

    def codecs(b: Broker) -> set[str]:
        found = set()
        for p in range(PARTITIONS):
            partition = b.context.registry.partition(topic, p)
            assert partition is not None
            data = partition.log.read(0, max_bytes=1 << 30)
            found |= {header.compression.name.lower() for _, header in iter_batches(data)}
        return found

    return broker.call(codecs)


# A client may send a batch uncompressed when compressing would not shrink it
# (librdkafka, kafka-python); every batch it did compress must be stored as such.


def _check(sent: dict[int, list[Record]], received: dict[int, list[Record]], n: int) -> None:
    assert sum(len(v) for v in received.values()) == n
    assert set(received) <= set(range(PARTITIONS))
    for partition, records in sent.items():
        assert received[partition] == records, f"partition {partition} differs"


# -- kafka-python ----------------------------------------------------------------


def _kafka_python_round_trip(bootstrap: str, topic: str, n: int, compression: str | None) -> None:
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    admin.close()
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        compression_type=compression,
        linger_ms=5,
    )
    records = _records(n, "kp")
    futures = [producer.send(topic, key=k, value=v, headers=list(h)) for k, v, h in records]
    producer.flush(60)
    sent: dict[int, list[Record]] = defaultdict(list)
    offsets: dict[int, list[int]] = defaultdict(list)
    for record, future in zip(records, futures, strict=True):
        meta = future.get(60)
        sent[meta.partition].append(record)
        offsets[meta.partition].append(meta.offset)
    producer.close()
    for partition_offsets in offsets.values():
        assert partition_offsets == list(range(len(partition_offsets)))

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    consumer.seek_to_beginning()
    received: dict[int, list[Record]] = defaultdict(list)
    deadline = time.monotonic() + 60
    while sum(len(v) for v in received.values()) < n and time.monotonic() < deadline:
        for tp, messages in consumer.poll(timeout_ms=500).items():
            for m in messages:
                received[tp.partition].append((m.key, m.value, tuple(m.headers)))
    assert consumer.beginning_offsets(tps) == {tp: 0 for tp in tps}
    assert consumer.end_offsets(tps) == {tp: len(sent[tp.partition]) for tp in tps}
    consumer.close()
    _check(sent, received, n)


def test_kafka_python_round_trip(broker: BrokerThread) -> None:
    _kafka_python_round_trip(broker.bootstrap, "kafka-python", N, None)
    assert _stored_codecs(broker, "kafka-python") == {"none"}


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_kafka_python_compressed(broker: BrokerThread, codec: str) -> None:
    _kafka_python_round_trip(broker.bootstrap, f"kp-{codec}", 2_000, codec)
    assert codec in _stored_codecs(broker, f"kp-{codec}") <= {codec, "none"}


# -- aiokafka --------------------------------------------------------------------


async def _aiokafka_round_trip(bootstrap: str, topic: str, n: int, compression: str | None) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    await admin.close()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        compression_type=compression,
        linger_ms=5,
    )
    await producer.start()
    records = _records(n, "aio")
    try:
        futures = [
            await producer.send(topic, key=k, value=v, headers=list(h)) for k, v, h in records
        ]
        metas = await asyncio.wait_for(asyncio.gather(*futures), 60)
    finally:
        await producer.stop()
    sent: dict[int, list[Record]] = defaultdict(list)
    for record, meta in zip(records, metas, strict=True):
        sent[meta.partition].append(record)
        assert meta.offset == len(sent[meta.partition]) - 1

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning()
        received: dict[int, list[Record]] = defaultdict(list)
        deadline = time.monotonic() + 60
        while sum(len(v) for v in received.values()) < n and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, messages in batch.items():
                for m in messages:
                    received[tp.partition].append((m.key, m.value, tuple(m.headers)))
        assert await consumer.beginning_offsets(tps) == {tp: 0 for tp in tps}
        assert await consumer.end_offsets(tps) == {tp: len(sent[tp.partition]) for tp in tps}
    finally:
        await consumer.stop()
    _check(sent, received, n)


def test_aiokafka_round_trip(broker: BrokerThread) -> None:
    asyncio.run(_aiokafka_round_trip(broker.bootstrap, "aiokafka", N, None))


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_aiokafka_compressed(broker: BrokerThread, codec: str) -> None:
    asyncio.run(_aiokafka_round_trip(broker.bootstrap, f"aio-{codec}", 2_000, codec))
    assert codec in _stored_codecs(broker, f"aio-{codec}") <= {codec, "none"}


# -- confluent-kafka (librdkafka) ------------------------------------------------


def _confluent_round_trip(bootstrap: str, topic: str, n: int, compression: str) -> None:
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, PARTITIONS, 1)]).values():
        future.result(30)
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "compression.type": compression,
            "linger.ms": 5,
        }
    )
    records = _records(n, "rd")
    delivered: dict[int, tuple[int, int]] = {}  # record index -> (partition, offset)
    errors: list[object] = []

    def on_delivery(index: int) -> object:
        def report(error: object, message: object) -> None:
            if error is not None:
                errors.append(error)
            else:
                delivered[index] = (message.partition(), message.offset())  # type: ignore[attr-defined]

        return report

    for index, (key, value, headers) in enumerate(records):
        while True:
            try:
                producer.produce(
                    topic,
                    key=key,
                    value=value,
                    headers=list(headers),
                    on_delivery=on_delivery(index),
                )
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(60) == 0
    assert not errors
    sent: dict[int, list[Record]] = defaultdict(list)
    for index, record in enumerate(records):
        partition, offset = delivered[index]
        sent[partition].append(record)
        assert offset == len(sent[partition]) - 1

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"g-{topic}", "enable.auto.commit": False}
    )
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        received: dict[int, list[Record]] = defaultdict(list)
        deadline = time.monotonic() + 60
        while sum(len(v) for v in received.values()) < n and time.monotonic() < deadline:
            for m in consumer.consume(num_messages=1000, timeout=0.5):
                assert m.error() is None, m.error()
                received[m.partition()].append((m.key(), m.value(), tuple(m.headers() or ())))
        for p in range(PARTITIONS):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            assert (low, high) == (0, len(sent[p]))
        earliest = consumer.offsets_for_times(
            [TopicPartition(topic, p, 0) for p in range(PARTITIONS)], timeout=10
        )
        assert [tp.offset for tp in earliest] == [0] * PARTITIONS
    finally:
        consumer.close()
    _check(sent, received, n)


def test_confluent_kafka_round_trip(broker: BrokerThread) -> None:
    _confluent_round_trip(broker.bootstrap, "confluent", N, "none")


@pytest.mark.parametrize(
    "codec",
    ["gzip", "snappy", "lz4", "zstd"],
)
def test_confluent_kafka_compressed(broker: BrokerThread, codec: str) -> None:
    _confluent_round_trip(broker.bootstrap, f"rd-{codec}", 2_000, codec)
    # librdkafka sends a batch uncompressed when compression would not shrink it.
    assert codec in _stored_codecs(broker, f"rd-{codec}") <= {codec, "none"}


# -- rift_client (ours) ------------------------------------------------------------


async def _rift_client_round_trip(bootstrap: str, topic: str, n: int, compression: str) -> None:
    import rift_client

    async with rift_client.Admin(bootstrap) as admin:
        await admin.create_topic(topic, partitions=PARTITIONS)
    records = _records(n, "rift")
    async with rift_client.Producer(
        bootstrap, acks="all", idempotent=True, compression=compression
    ) as producer:
        futures = [await producer.enqueue(topic, v, key=k, headers=h) for k, v, h in records]
        reports = await asyncio.wait_for(asyncio.gather(*futures), 60)
    sent: dict[int, list[Record]] = defaultdict(list)
    for record, report in zip(records, reports, strict=True):
        assert report.ok, report
        sent[report.partition].append(record)
        assert report.offset == len(sent[report.partition]) - 1
    tps = [rift_client.TopicPartition(topic=topic, partition=p) for p in range(PARTITIONS)]
    async with rift_client.Consumer(bootstrap) as consumer:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        received: dict[int, list[Record]] = defaultdict(list)
        deadline = time.monotonic() + 60
        while sum(len(v) for v in received.values()) < n and time.monotonic() < deadline:
            for m in await consumer.poll(timeout_ms=500):
                received[m.partition].append((m.key, m.value, tuple(m.headers)))  # type: ignore[arg-type]
    async with rift_client.Admin(bootstrap) as admin:
        assert await admin.list_offsets(tps, spec="earliest") == {tp: 0 for tp in tps}
        latest = await admin.list_offsets(tps, spec="latest")
        assert latest == {tp: len(sent[tp.partition]) for tp in tps}
    _check(sent, received, n)


def test_rift_client_round_trip(broker: BrokerThread) -> None:
    asyncio.run(_rift_client_round_trip(broker.bootstrap, "rift", N, "none"))


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_rift_client_compressed(broker: BrokerThread, codec: str) -> None:
    asyncio.run(_rift_client_round_trip(broker.bootstrap, f"rift-{codec}", 2_000, codec))
    assert codec in _stored_codecs(broker, f"rift-{codec}") <= {codec, "none"}
