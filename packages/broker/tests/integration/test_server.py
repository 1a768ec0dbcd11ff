"""The broker over real loopback sockets: bad input, ordering, acks=0, backpressure.

The broker runs in-process on 127.0.0.1 with an ephemeral port; requests are raw
frames built with kio, so each test controls exactly what goes on the wire.
"""

from __future__ import annotations

import asyncio
import io
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from kio.schema.api_versions.v0.response import ApiVersionsResponse as ApiVersionsV0Response
from kio.schema.api_versions.v2.request import ApiVersionsRequest
from kio.schema.api_versions.v2.response import ApiVersionsResponse
from kio.schema.create_topics.v4.request import CreatableTopic, CreateTopicsRequest
from kio.schema.create_topics.v4.response import CreateTopicsResponse
from kio.schema.metadata.v8.request import MetadataRequest
from kio.schema.metadata.v8.response import MetadataResponse
from kio.schema.produce.v8.request import PartitionProduceData, ProduceRequest, TopicProduceData
from kio.schema.produce.v8.response import ProduceResponse
from kio.serial import entity_reader, entity_writer

from rift_broker.records import build_batch
from rift_broker.server import Broker, BrokerConfig

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

TIMEOUT = 10.0


def _frame(api_key: int, version: int, correlation_id: int, body: Any) -> bytes:
    buf = io.BytesIO()
    buf.write(struct.pack(">hhih", api_key, version, correlation_id, 4) + b"test")
    entity_writer(type(body))(buf, body)
    payload = buf.getvalue()
    return struct.pack(">i", len(payload)) + payload


async def _read_response(reader: asyncio.StreamReader, cls: type) -> tuple[int, Any]:
    size = struct.unpack(">i", await asyncio.wait_for(reader.readexactly(4), TIMEOUT))[0]
    payload = await asyncio.wait_for(reader.readexactly(size), TIMEOUT)
    correlation_id = struct.unpack_from(">i", payload)[0]
    body, used = entity_reader(cls)(payload, 4)
    assert used == size - 4
    return correlation_id, body


def _produce(topic: str, partition: int, batch: bytes, *, acks: int = -1) -> ProduceRequest:
    import datetime

    from kio.static.primitive import i32Timedelta

    return ProduceRequest(
        acks=acks,  # type: ignore[arg-type]
        timeout=i32Timedelta.parse(datetime.timedelta(seconds=5)),
        topic_data=(
            TopicProduceData(
                name=topic,  # type: ignore[arg-type]
                partition_data=(PartitionProduceData(index=partition, records=batch),),  # type: ignore[arg-type]
            ),
        ),
    )


def _create(name: str, partitions: int) -> CreateTopicsRequest:
    return CreateTopicsRequest(
        topics=(
            CreatableTopic(
                name=name,  # type: ignore[arg-type]
                num_partitions=partitions,  # type: ignore[arg-type]
                replication_factor=1,  # type: ignore[arg-type]
                assignments=(),
                configs=(),
            ),
        ),
    )


def run(tmp_path: Path, scenario: Callable[[Broker], Awaitable[None]], **settings: Any) -> None:
    async def main() -> None:
        config = BrokerConfig(data_dir=tmp_path / "data", port=0, **settings)
        async with Broker(config) as broker:
            await asyncio.wait_for(scenario(broker), 60)

    asyncio.run(main())


async def _connect(broker: Broker) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", broker.port)


async def _create_topic(broker: Broker, name: str, partitions: int = 1) -> None:
    reader, writer = await _connect(broker)
    writer.write(_frame(19, 4, 1, _create(name, partitions)))
    _, response = await _read_response(reader, CreateTopicsResponse)
    assert response.topics[0].error_code == 0
    writer.close()


async def _assert_closed(reader: asyncio.StreamReader) -> None:
    assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""


async def _assert_serves(broker: Broker) -> None:
    reader, writer = await _connect(broker)
    writer.write(_frame(18, 2, 5, ApiVersionsRequest()))
    correlation_id, response = await _read_response(reader, ApiVersionsResponse)
    assert correlation_id == 5
    assert response.error_code == 0
    writer.close()


GARBAGE = [
    pytest.param(b"\xff\xff\xff\xff", id="negative-size"),
    pytest.param(struct.pack(">i", 2**30), id="oversized"),
    pytest.param(struct.pack(">i", 12) + b"\x00" * 12, id="zeros"),
    pytest.param(struct.pack(">i", 8) + b"\x00\x03\x00\x01\x00\x00\x00\x07", id="short-header"),
    pytest.param(
        struct.pack(">i", 14) + struct.pack(">hhih", 0, 2, 1, -1) + b"\0\0\0\0", id="produce-v2"
    ),
    pytest.param(struct.pack(">i", 10) + struct.pack(">hhih", 999, 0, 1, -1), id="unknown-api"),
    pytest.param(struct.pack(">i", 100) + b"truncated", id="truncated"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", id="http"),
]


@pytest.mark.parametrize("garbage", GARBAGE)
def test_bad_input_closes_only_that_connection(
    tmp_path: Path, garbage: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario(broker: Broker) -> None:
        await _create_topic(broker, "t")
        partition = broker.context.registry.partition("t", 0)
        assert partition is not None
        before = partition.log.log_end_offset
        good_reader, good_writer = await _connect(broker)
        bad_reader, bad_writer = await _connect(broker)
        bad_writer.write(garbage)
        if garbage.endswith(b"truncated"):
            bad_writer.write_eof()
        await _assert_closed(bad_reader)
        # The other connection, and new ones, are still served.
        good_writer.write(_frame(18, 2, 9, ApiVersionsRequest()))
        correlation_id, _ = await _read_response(good_reader, ApiVersionsResponse)
        assert correlation_id == 9
        await _assert_serves(broker)
        assert partition.log.log_end_offset == before
        good_writer.close()
        bad_writer.close()

    with caplog.at_level("WARNING", logger="rift_broker.server"):
        run(
            tmp_path, scenario, max_request_bytes=1 << 20, max_inflight_bytes_per_connection=1 << 20
        )
    closing = [r for r in caplog.records if "closing connection" in r.getMessage()]
    assert len(closing) == 1


def test_unknown_api_versions_version_gets_error_35_in_v0(tmp_path: Path) -> None:
    async def scenario(broker: Broker) -> None:
        reader, writer = await _connect(broker)
        # ApiVersions v3 (flexible, header v2): client id, empty tagged fields, then a body.
        payload = struct.pack(">hhih", 18, 3, 77, 4) + b"test" + b"\0" + b"\x05rdkaf\x042.0\0"
        writer.write(struct.pack(">i", len(payload)) + payload)
        correlation_id, response = await _read_response(reader, ApiVersionsV0Response)
        assert correlation_id == 77
        assert response.error_code == 35
        listed = {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}
        assert listed[18] == (0, 2)
        assert listed[0] == (0, 8)
        assert listed[1] == (0, 11)
        # The connection stays usable: the client retries with a version we know.
        writer.write(_frame(18, 2, 78, ApiVersionsRequest()))
        assert (await _read_response(reader, ApiVersionsResponse))[0] == 78
        writer.close()

    run(tmp_path, scenario)


def test_pipelined_requests_are_answered_in_order_and_acks0_gets_none(tmp_path: Path) -> None:
    async def scenario(broker: Broker) -> None:
        await _create_topic(broker, "t", 2)
        reader, writer = await _connect(broker)
        frames = []
        for i in range(50):
            batch = build_batch([f"v{i}".encode()])
            acks = 0 if i % 5 == 0 else -1
            frames.append(_frame(0, 8, 1000 + i, _produce("t", i % 2, batch, acks=acks)))
            frames.append(
                _frame(
                    3,
                    8,
                    2000 + i,
                    MetadataRequest(
                        topics=None,
                        include_cluster_authorized_operations=False,
                        include_topic_authorized_operations=False,
                    ),
                )
            )
        writer.write(b"".join(frames))
        seen = []
        for i in range(50):
            if i % 5 != 0:
                correlation_id, produced = await _read_response(reader, ProduceResponse)
                assert correlation_id == 1000 + i
                assert produced.responses[0].partition_responses[0].error_code == 0
                seen.append(correlation_id)
            correlation_id, metadata = await _read_response(reader, MetadataResponse)
            assert correlation_id == 2000 + i
            # Every topic, the internal __consumer_offsets included (as Kafka lists it).
            assert [t.name for t in metadata.topics] == ["__consumer_offsets", "t"]
        assert len(seen) == 40
        log0 = broker.context.registry.partition("t", 0)
        log1 = broker.context.registry.partition("t", 1)
        assert log0 is not None
        assert log1 is not None
        assert log0.log.log_end_offset == log1.log.log_end_offset == 25
        writer.close()

    run(tmp_path, scenario)


def test_backpressure_bounds_in_flight_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A producer faster than the disk is held at the budget and slowed down."""
    import time

    from rift_broker.log.flush import FlushTicket

    budget = 256 * 1024
    real_run = FlushTicket.run

    def slow_disk(ticket: FlushTicket) -> None:
        time.sleep(0.05)  # runs in the flusher's worker thread: a slow fsync
        real_run(ticket)

    monkeypatch.setattr(FlushTicket, "run", slow_disk)

    async def scenario(broker: Broker) -> None:
        await _create_topic(broker, "t")
        reader, writer = await _connect(broker)
        frame = _frame(0, 8, 1, _produce("t", 0, build_batch([b"x" * 60_000])))
        n = 200
        sender = asyncio.create_task(_send_many(writer, frame, n))
        receiver = asyncio.create_task(_receive(reader, n))
        peak = 0
        held_back = False
        while not receiver.done():
            await asyncio.sleep(0.01)
            peak = max(peak, broker._budget.in_use)
            held_back = held_back or not sender.done()
        assert await receiver == n
        await sender
        assert 0 < peak <= budget
        assert held_back
        writer.close()

    run(
        tmp_path,
        scenario,
        max_request_bytes=128 * 1024,
        max_inflight_bytes_per_connection=budget,
        max_inflight_bytes=budget,
    )


async def _receive(reader: asyncio.StreamReader, n: int) -> int:
    for _ in range(n):
        _, response = await _read_response(reader, ProduceResponse)
        assert response.responses[0].partition_responses[0].error_code == 0
    return n


async def _send_many(writer: asyncio.StreamWriter, frame: bytes, n: int) -> None:
    for _ in range(n):
        writer.write(frame)
        await writer.drain()


def test_restart_keeps_topics_and_acknowledged_data(tmp_path: Path) -> None:
    async def first(broker: Broker) -> None:
        await _create_topic(broker, "kept", 3)
        reader, writer = await _connect(broker)
        for i in range(30):
            writer.write(_frame(0, 8, i, _produce("kept", i % 3, build_batch([b"v%d" % i]))))
            _, response = await _read_response(reader, ProduceResponse)
            assert response.responses[0].partition_responses[0].error_code == 0
        writer.close()

    async def second(broker: Broker) -> None:
        topic = broker.context.registry.get("kept")
        assert topic is not None
        assert len(topic.partitions) == 3
        assert [p.high_watermark for p in topic.partitions] == [10, 10, 10]

    run(tmp_path, first)
    run(tmp_path, second)


def test_stop_answers_in_flight_requests_then_closes(tmp_path: Path) -> None:
    from kio.schema.fetch.v11.request import FetchPartition, FetchRequest, FetchTopic
    from kio.schema.fetch.v11.response import FetchResponse

    async def main() -> None:
        import datetime

        from kio.static.primitive import i32Timedelta

        broker = Broker(BrokerConfig(data_dir=tmp_path / "data", port=0))
        await broker.start()
        await _create_topic(broker, "t")
        idle_reader, idle_writer = await _connect(broker)
        reader, writer = await _connect(broker)
        fetch = FetchRequest(
            max_wait=i32Timedelta.parse(datetime.timedelta(seconds=30)),
            min_bytes=1,  # type: ignore[arg-type]
            topics=(
                FetchTopic(
                    topic="t",  # type: ignore[arg-type]
                    partitions=(
                        FetchPartition(partition=0, fetch_offset=0, partition_max_bytes=1 << 20),
                    ),  # type: ignore[arg-type]
                ),
            ),
            forgotten_topics_data=(),
        )
        writer.write(_frame(1, 11, 42, fetch))
        await asyncio.sleep(0.2)  # the fetch is now long-polling
        started = asyncio.get_running_loop().time()
        await asyncio.wait_for(broker.stop(), 10)
        assert asyncio.get_running_loop().time() - started < 5
        correlation_id, response = await _read_response(reader, FetchResponse)
        assert correlation_id == 42
        assert response.responses[0].partitions[0].error_code == 0
        await _assert_closed(reader)
        await _assert_closed(idle_reader)
        with pytest.raises(ConnectionRefusedError):  # no longer accepting
            await asyncio.open_connection("127.0.0.1", broker.port)
        writer.close()
        idle_writer.close()

    asyncio.run(main())
