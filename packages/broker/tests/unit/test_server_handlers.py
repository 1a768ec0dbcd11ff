"""Request handlers end to end without sockets: frame -> decode -> handler -> encode -> decode.

Logs live on the simulated disk (MemoryStorage); only the small topic JSON files
touch tmp_path.
"""

from __future__ import annotations

import asyncio
import datetime
import io
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from kio.index import load_request_schema, load_response_schema
from kio.serial import entity_reader, entity_writer
from kio.static.primitive import i32Timedelta

from rift_broker.protocol import DEFAULT_TABLE, decode_request
from rift_broker.records import build_batch
from rift_broker.server.config import BrokerConfig
from rift_broker.server.context import CLOSE_CONNECTION, BrokerContext
from rift_broker.server.handlers import HANDLERS
from rift_broker.server.producer_ids import ProducerIdAllocator
from rift_broker.server.registry import TopicRegistry
from rift_broker.storage import MemoryStorage


def _ms(n: int) -> i32Timedelta:
    return i32Timedelta.parse(datetime.timedelta(milliseconds=n))


class Harness:
    def __init__(self, tmp_path: Path, **settings: Any) -> None:
        self.storage = MemoryStorage()
        config = BrokerConfig(
            data_dir=tmp_path, durability=settings.pop("durability", "none"), **settings
        )
        registry = TopicRegistry(config, storage=self.storage)
        registry.load(now_ms=0)
        self.ctx = BrokerContext(
            config=config,
            table=DEFAULT_TABLE,
            registry=registry,
            producer_ids=ProducerIdAllocator(tmp_path),
            log=__import__("logging").getLogger("test"),
        )

    async def call(self, api_key: int, version: int, **fields: Any) -> Any:
        request_cls = load_request_schema(api_key, version)
        body = _build(request_cls, fields)
        buf = io.BytesIO()
        buf.write(struct.pack(">hhih", api_key, version, 1, -1))
        entity_writer(request_cls)(buf, body)
        request = decode_request(buf.getvalue())
        response = await HANDLERS[api_key](self.ctx, request)
        if response is None or response is CLOSE_CONNECTION:
            return response
        out = io.BytesIO()
        entity_writer(type(response))(out, response)
        decoded, _ = entity_reader(load_response_schema(api_key, request.response_version))(
            out.getvalue(), 0
        )
        return decoded

    async def create(self, name: str, partitions: int = 1, **configs: str) -> int:
        response = await self.call(
            19,
            4,
            topics=[
                {
                    "name": name,
                    "num_partitions": partitions,
                    "replication_factor": 1,
                    "assignments": [],
                    "configs": [
                        {"name": k.replace("_", "."), "value": v} for k, v in configs.items()
                    ],
                }
            ],
        )
        return int(response.topics[0].error_code)

    async def produce(self, topic: str, partition: int, batch: bytes, *, acks: int = -1) -> Any:
        response = await self.call(
            0,
            8,
            acks=acks,
            timeout=_ms(1000),
            topic_data=[
                {"name": topic, "partition_data": [{"index": partition, "records": batch}]}
            ],
        )
        if response is None or response is CLOSE_CONNECTION:
            return response
        return response.responses[0].partition_responses[0]

    async def fetch(
        self, topic: str, partition: int, offset: int, *, max_wait: int = 0, min_bytes: int = 1
    ) -> Any:
        response = await self.call(
            1,
            11,
            max_wait=_ms(max_wait),
            min_bytes=min_bytes,
            topics=[
                {
                    "topic": topic,
                    "partitions": [
                        {
                            "partition": partition,
                            "fetch_offset": offset,
                            "partition_max_bytes": 1 << 20,
                        }
                    ],
                }
            ],
            forgotten_topics_data=[],
        )
        return response.responses[0].partitions[0]


def _build(cls: type, fields: dict[str, Any]) -> Any:
    """Build a kio entity from plain dicts and lists (nested entities by field type)."""
    import dataclasses
    import sys
    import typing

    hints = typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))
    values = {}
    for name, value in fields.items():
        if isinstance(value, list):
            hint = hints[name]
            if typing.get_origin(hint) is not tuple:  # Optional[tuple[...]]
                hint = next(a for a in typing.get_args(hint) if typing.get_origin(a) is tuple)
            item_type = typing.get_args(hint)[0]
            if typing.get_origin(item_type) is None and dataclasses.is_dataclass(item_type):
                value = tuple(_build(item_type, v) for v in value)  # type: ignore[arg-type]
            else:
                value = tuple(value)
        values[name] = value
    return cls(**values)


def run(tmp_path: Path, scenario: Callable[[Harness], Awaitable[None]], **settings: Any) -> None:
    async def main() -> None:
        await scenario(Harness(tmp_path, **settings))

    asyncio.run(main())


def test_api_versions_lists_the_table(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        response = await h.call(18, 2)
        assert response.error_code == 0
        keys = {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}
        assert keys[0] == (0, 8)
        assert keys[1] == (0, 11)
        assert keys[3] == (0, 8)

    run(tmp_path, scenario)


def test_create_topics_validates(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        assert await h.create("ok", 3, min_insync_replicas="1", retention_ms="1000") == 0
        assert await h.create("ok", 3) == 36  # TOPIC_ALREADY_EXISTS
        assert await h.create("bad name!", 1) == 17  # INVALID_TOPIC_EXCEPTION
        assert await h.create("zero", 0) == 37  # INVALID_PARTITIONS
        assert await h.create("conf", 1, cleanup_policy="compact") == 40  # INVALID_CONFIG
        assert await h.create("conf2", 1, **{"no_such_setting": "1"}) == 40
        response = await h.call(
            19,
            4,
            topics=[
                {
                    "name": "rf",
                    "num_partitions": 1,
                    "replication_factor": 3,
                    "assignments": [],
                    "configs": [],
                }
            ],
        )
        assert response.topics[0].error_code == 38  # INVALID_REPLICATION_FACTOR
        assert [t.spec.name for t in h.ctx.registry.topics()] == ["ok"]
        assert (tmp_path / "ok.topic.json").exists()

    run(tmp_path, scenario)


def test_metadata_lists_topics_and_this_node(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.create("a", 2)
        everything = await h.call(
            3,
            8,
            topics=None,
            include_cluster_authorized_operations=False,
            include_topic_authorized_operations=False,
        )
        assert [(b.node_id, b.host, b.port) for b in everything.brokers] == [(0, "127.0.0.1", 9092)]
        assert everything.controller_id == 0
        (topic,) = everything.topics
        assert [p.partition_index for p in topic.partitions] == [0, 1]
        assert all(p.leader_id == 0 and p.leader_epoch == 0 for p in topic.partitions)
        unknown = await h.call(3, 1, topics=[{"name": "nope"}])
        assert unknown.topics[0].error_code == 3
        assert h.ctx.registry.get("nope") is None  # auto-creation is off

    run(tmp_path, scenario)


def test_metadata_auto_creates_when_configured(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        response = await h.call(3, 5, topics=[{"name": "auto"}], allow_auto_topic_creation=True)
        assert response.topics[0].error_code == 0
        assert len(response.topics[0].partitions) == 3

    run(tmp_path, scenario, auto_create_topics=True, default_partitions=3)


def test_produce_fetch_and_offsets(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.create("t", 1)
        first = await h.produce("t", 0, build_batch([b"a", b"b"], base_timestamp=1000))
        second = await h.produce("t", 0, build_batch([b"c"], base_timestamp=2000))
        assert (first.error_code, first.base_offset, second.base_offset) == (0, 0, 2)
        assert await h.produce("t", 0, build_batch([b"d"]), acks=0) is None
        fetched = await h.fetch("t", 0, 0)
        assert fetched.error_code == 0
        assert fetched.high_watermark == 4
        from rift_broker.records import iter_batches

        assert [hd.base_offset for _, hd in iter_batches(fetched.records)] == [0, 2, 3]
        assert (await h.fetch("t", 0, 99)).error_code == 1  # OFFSET_OUT_OF_RANGE
        assert (await h.fetch("nope", 0, 0)).error_code == 3
        assert (await h.produce("nope", 0, build_batch([b"x"]))).error_code == 3
        assert (await h.produce("t", 7, build_batch([b"x"]))).error_code == 3
        corrupt = bytearray(build_batch([b"x"]))
        corrupt[-1] ^= 0xFF
        assert (await h.produce("t", 0, bytes(corrupt))).error_code == 2  # CORRUPT_MESSAGE
        assert (await h.produce("t", 0, build_batch([b"x"]), acks=2)).error_code == 21
        offsets = await h.call(
            2,
            5,
            replica_id=-1,
            isolation_level=0,
            topics=[
                {
                    "name": "t",
                    "partitions": [
                        {"partition_index": 0, "timestamp": -2},
                    ],
                }
            ],
        )
        assert offsets.topics[0].partitions[0].offset == 0
        latest = await h.call(
            2,
            1,
            replica_id=-1,
            topics=[{"name": "t", "partitions": [{"partition_index": 0, "timestamp": -1}]}],
        )
        assert latest.topics[0].partitions[0].offset == 4
        by_time = await h.call(
            2,
            5,
            replica_id=-1,
            isolation_level=0,
            topics=[{"name": "t", "partitions": [{"partition_index": 0, "timestamp": 1500}]}],
        )
        assert by_time.topics[0].partitions[0].offset == 2
        epochs = await h.call(
            23,
            3,
            replica_id=-1,
            topics=[{"topic": "t", "partitions": [{"partition": 0, "leader_epoch": 0}]}],
        )
        assert (
            epochs.topics[0].partitions[0].leader_epoch,
            epochs.topics[0].partitions[0].end_offset,
        ) == (0, 4)

    run(tmp_path, scenario)


def test_idempotent_produce(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.create("t", 1)
        init = await h.call(22, 1, transactional_id=None, transaction_timeout=_ms(1000))
        pid, epoch = init.producer_id, init.producer_epoch
        again = await h.call(22, 0, transactional_id=None, transaction_timeout=_ms(1000))
        assert again.producer_id != pid

        def batch(seq: int, n: int = 1, e: int = epoch) -> bytes:
            return build_batch([b"x"] * n, producer_id=pid, producer_epoch=e, base_sequence=seq)

        assert (await h.produce("t", 0, batch(0, 3))).base_offset == 0
        assert (await h.produce("t", 0, batch(3))).base_offset == 3
        retried = await h.produce("t", 0, batch(0, 3))
        assert (retried.error_code, retried.base_offset) == (0, 0)
        assert h.ctx.registry.partition("t", 0).log.log_end_offset == 4  # type: ignore[union-attr]
        assert (await h.produce("t", 0, batch(9))).error_code == 45
        assert (await h.produce("t", 0, batch(0, 1, e=epoch + 1))).error_code == 0
        assert (await h.produce("t", 0, batch(4, 1, e=epoch))).error_code == 47

    run(tmp_path, scenario)


def test_fetch_long_poll_wakes_on_produce(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.create("t", 1)
        waiting = asyncio.create_task(h.fetch("t", 0, 0, max_wait=30_000))
        for _ in range(5):
            await asyncio.sleep(0)
        assert not waiting.done()
        await h.produce("t", 0, build_batch([b"hello"]))
        fetched = await asyncio.wait_for(waiting, 10)
        assert fetched.high_watermark == 1
        assert fetched.records

        closing = asyncio.create_task(h.fetch("t", 0, 1, max_wait=30_000))
        for _ in range(5):
            await asyncio.sleep(0)
        h.ctx.closing.set()
        assert (await asyncio.wait_for(closing, 10)).records in (b"", None)

    run(tmp_path, scenario)


def test_fsync_durability_hides_unflushed_data_until_acknowledged(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.create("t", 1)
        partition = h.ctx.registry.partition("t", 0)
        assert partition is not None
        produced = await h.produce("t", 0, build_batch([b"a"]))
        assert produced.error_code == 0
        assert partition.log.flushed_offset == 1 == partition.high_watermark

    run(tmp_path, scenario, durability="fsync")


def test_min_insync_replicas_above_one_rejects_acks_all(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.create("t", 1, min_insync_replicas="2")
        assert (await h.produce("t", 0, build_batch([b"a"]))).error_code == 19
        assert (await h.produce("t", 0, build_batch([b"a"]), acks=1)).error_code == 0

    run(tmp_path, scenario)


def test_restart_rebuilds_topics_and_producer_state(tmp_path: Path) -> None:
    storage = MemoryStorage()

    async def first() -> None:
        h = Harness(tmp_path)
        h.storage = storage
        h.ctx.registry = TopicRegistry(h.ctx.config, storage=storage)
        await h.create("t", 1)
        batch = build_batch([b"x"], producer_id=5, producer_epoch=0, base_sequence=0)
        assert (await h.produce("t", 0, batch)).base_offset == 0
        for p in h.ctx.registry.partitions():
            await p.close()

    async def second() -> None:
        h = Harness(tmp_path)
        h.ctx.registry = TopicRegistry(h.ctx.config, storage=storage)
        h.ctx.registry.load(now_ms=0)
        batch = build_batch([b"x"], producer_id=5, producer_epoch=0, base_sequence=0)
        retried = await h.produce("t", 0, batch)
        assert (retried.error_code, retried.base_offset) == (0, 0)
        assert h.ctx.registry.partition("t", 0).log.log_end_offset == 1  # type: ignore[union-attr]

    asyncio.run(first())
    asyncio.run(second())


@pytest.mark.parametrize("version", [3, 5, 7, 8])
def test_every_produce_version_answers(tmp_path: Path, version: int) -> None:
    async def scenario(h: Harness) -> None:
        await h.create("t", 1)
        response = await h.call(
            0,
            version,
            acks=1,
            timeout=_ms(1000),
            topic_data=[
                {"name": "t", "partition_data": [{"index": 0, "records": build_batch([b"a"])}]}
            ],
        )
        assert response.responses[0].partition_responses[0].error_code == 0

    run(tmp_path, scenario)


def test_failed_fsync_fails_the_produce_and_stops_the_broker(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        reasons: list[str] = []
        h.ctx.registry = TopicRegistry(h.ctx.config, storage=h.storage, on_fatal=reasons.append)
        await h.create("t", 1)
        h.storage.fail_fsync = True
        produced = await h.produce("t", 0, build_batch([b"a"]))
        assert produced.error_code == 56  # KAFKA_STORAGE_ERROR, never success
        assert reasons
        assert "t-0 failed" in reasons[0]
        again = await h.produce("t", 0, build_batch([b"b"]))
        assert again.error_code == 56

    run(tmp_path, scenario, durability="fsync")


def test_acks0_error_closes_the_connection(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.create("t", 1)
        assert await h.produce("t", 0, build_batch([b"a"]), acks=0) is None
        assert await h.produce("t", 5, build_batch([b"a"]), acks=0) is CLOSE_CONNECTION

    run(tmp_path, scenario)


def test_unknown_api_versions_version_is_answered_in_v0(tmp_path: Path) -> None:
    from kio.schema.api_versions.v0.response import ApiVersionsResponse

    async def scenario(h: Harness) -> None:
        frame = struct.pack(">hhih", 18, 4, 3, -1) + b"\0\x02x\x02y\0"
        request = decode_request(frame)
        response = await HANDLERS[18](h.ctx, request)
        assert isinstance(response, ApiVersionsResponse)  # the v0 class
        assert response.error_code == 35
        assert {k.api_key for k in response.api_keys} == {0, 1, 2, 3, 18, 19, 22, 23}

    run(tmp_path, scenario)


def test_two_batches_of_one_producer_in_one_request(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.create("t", 1)

        def batch(seq: int, n: int) -> bytes:
            return build_batch([b"x"] * n, producer_id=3, producer_epoch=0, base_sequence=seq)

        both = batch(0, 2) + batch(2, 1)
        first = await h.produce("t", 0, both)
        assert (first.error_code, first.base_offset) == (0, 0)
        retried = await h.produce("t", 0, both)
        assert (retried.error_code, retried.base_offset) == (0, 0)
        partition = h.ctx.registry.partition("t", 0)
        assert partition is not None
        assert partition.log.log_end_offset == 3

    run(tmp_path, scenario)


def test_fetch_respects_partition_and_response_limits(tmp_path: Path) -> None:
    from rift_broker.records import iter_batches

    async def scenario(h: Harness) -> None:
        await h.create("t", 2)
        for partition in (0, 1):
            for _ in range(3):
                await h.produce("t", partition, build_batch([b"x" * 1000]))
        size = len(build_batch([b"x" * 1000]))

        async def fetch(partition_max: int, max_bytes: int) -> list[int]:
            response = await h.call(
                1,
                11,
                max_wait=_ms(0),
                min_bytes=1,
                max_bytes=max_bytes,
                topics=[
                    {
                        "topic": "t",
                        "partitions": [
                            {
                                "partition": p,
                                "fetch_offset": 0,
                                "partition_max_bytes": partition_max,
                            }
                            for p in (0, 1)
                        ],
                    }
                ],
                forgotten_topics_data=[],
            )
            parts = response.responses[0].partitions
            return [len(list(iter_batches(p.records or b""))) for p in parts]

        assert await fetch(10 * size, 100 * size) == [3, 3]
        assert await fetch(2 * size, 100 * size) == [2, 2]
        assert await fetch(10 * size, 4 * size) == [3, 1]
        assert await fetch(1, 1) == [1, 0]  # the first batch always comes (KIP-74)

    run(tmp_path, scenario)
