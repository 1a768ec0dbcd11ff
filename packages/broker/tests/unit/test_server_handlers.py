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
from kio.static.primitive import i32Timedelta, i64Timedelta

from rift_broker.group import partition_for
from rift_broker.protocol import DEFAULT_TABLE, decode_request, table_for
from rift_broker.records import build_batch
from rift_broker.server.clock import ManualClock
from rift_broker.server.config import BrokerConfig
from rift_broker.server.context import CLOSE_CONNECTION, BrokerContext
from rift_broker.server.groups import GroupDriver
from rift_broker.server.handlers import HANDLERS, SINGLE_NODE_HANDLERS
from rift_broker.server.offsets_log import LocalOffsetsLog, ensure_offsets_topic
from rift_broker.server.producer_ids import ProducerIdAllocator
from rift_broker.server.registry import TopicRegistry
from rift_broker.storage import MemoryStorage


def _ms(n: int) -> i32Timedelta:
    return i32Timedelta.parse(datetime.timedelta(milliseconds=n))


class Harness:
    """Handlers over the simulated disk; ``groups=True`` adds the group APIs, their
    driver (on a manual clock) and ``__consumer_offsets``."""

    def __init__(self, tmp_path: Path, *, groups: bool = False, **settings: Any) -> None:
        self.storage = MemoryStorage()
        config = BrokerConfig(
            data_dir=tmp_path, durability=settings.pop("durability", "none"), **settings
        )
        registry = TopicRegistry(config, storage=self.storage)
        registry.load(now_ms=0)
        self.clock = ManualClock(1_000_000)
        driver = None
        if groups:
            topic = ensure_offsets_topic(registry, partitions=config.offsets_partitions, now_ms=0)
            driver = GroupDriver(
                LocalOffsetsLog(topic, clock=self.clock.now_ms),
                num_partitions=config.offsets_partitions,
                config=config.group_config,
                clock=self.clock,
                partition_exists=lambda t, p: registry.partition(t, p) is not None,
            )
            driver.load_all()
        self.ctx = BrokerContext(
            config=config,
            table=table_for(SINGLE_NODE_HANDLERS) if groups else DEFAULT_TABLE,
            registry=registry,
            producer_ids=ProducerIdAllocator(tmp_path),
            log=__import__("logging").getLogger("test"),
            groups=driver,
        )

    async def call(self, api_key: int, version: int, **fields: Any) -> Any:
        request_cls = load_request_schema(api_key, version)
        body = _build(request_cls, fields)
        buf = io.BytesIO()
        buf.write(struct.pack(">hhih", api_key, version, 1, -1))
        entity_writer(request_cls)(buf, body)
        request = decode_request(buf.getvalue(), table=self.ctx.table)
        response = await SINGLE_NODE_HANDLERS[api_key](self.ctx, request)
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


# -- the group APIs ------------------------------------------------------------------


GROUPS = {"groups": True, "group_initial_rebalance_delay_ms": 0, "offsets_partitions": 5}


def _join_fields(member_id: str = "", *, session_ms: int = 6000) -> dict[str, Any]:
    return {
        "group_id": "g",
        "session_timeout": _ms(session_ms),
        "rebalance_timeout": _ms(session_ms),
        "member_id": member_id,
        "group_instance_id": None,
        "protocol_type": "consumer",
        "protocols": [{"name": "range", "metadata": b"sub"}],
    }


def test_api_versions_lists_the_group_apis_from_version_0(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        response = await h.call(18, 2)
        keys = {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}
        assert {k: keys[k] for k in range(8, 17)} == {
            8: (0, 7),  # OffsetCommit: 2-7 served
            9: (0, 5),  # OffsetFetch: 1-5 served
            10: (0, 2),
            11: (0, 5),
            12: (0, 3),
            13: (0, 3),
            14: (0, 3),
            15: (0, 4),
            16: (0, 2),
        }
        frame = struct.pack(">hhih", 8, 1, 9, -1)  # OffsetCommit v1: advertised, not served
        with pytest.raises(Exception, match="unsupported version 1 of OFFSET_COMMIT"):
            decode_request(frame, table=h.ctx.table)

    run(tmp_path, scenario, **GROUPS)


def test_find_coordinator_answers_this_node(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        v0 = await h.call(10, 0, key="g")
        assert (v0.error_code, v0.node_id, v0.host, v0.port) == (0, 0, "127.0.0.1", 9092)
        v2 = await h.call(10, 2, key="g", key_type=0)
        assert (v2.error_code, v2.node_id, v2.error_message) == (0, 0, None)
        txn = await h.call(10, 2, key="tx", key_type=1)
        assert txn.error_code == 42  # transactions are not served
        assert h.ctx.groups is not None
        h.ctx.groups.unload(partition_for("g", 5))
        gone = await h.call(10, 1, key="g", key_type=0)
        assert gone.error_code == 15  # COORDINATOR_NOT_AVAILABLE: not loaded

    run(tmp_path, scenario, **GROUPS)


def test_a_member_joins_syncs_heartbeats_commits_fetches_and_leaves(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.create("t", 2)
        first = await h.call(11, 5, **_join_fields())
        assert first.error_code == 79  # MEMBER_ID_REQUIRED (v4+)
        member = first.member_id
        joined = await h.call(11, 5, **_join_fields(member))
        assert (joined.error_code, joined.generation_id, joined.leader) == (0, 1, member)
        assert joined.protocol_name == "range"
        assert [(m.member_id, m.metadata) for m in joined.members] == [(member, b"sub")]
        synced = await h.call(
            14,
            3,
            group_id="g",
            generation_id=1,
            member_id=member,
            group_instance_id=None,
            assignments=[{"member_id": member, "assignment": b"plan"}],
        )
        assert (synced.error_code, synced.assignment) == (0, b"plan")
        beat = await h.call(12, 3, group_id="g", generation_id=1, member_id=member)
        assert beat.error_code == 0
        stale = await h.call(12, 0, group_id="g", generation_id=0, member_id=member)
        assert stale.error_code == 22  # ILLEGAL_GENERATION

        committed = await h.call(
            8,
            7,
            group_id="g",
            generation_id_or_member_epoch=1,
            member_id=member,
            group_instance_id=None,
            topics=[
                {
                    "name": "t",
                    "partitions": [
                        {
                            "partition_index": 1,
                            "committed_offset": 42,
                            "committed_leader_epoch": 3,
                            "committed_metadata": "m",
                        },
                        {
                            "partition_index": 9,
                            "committed_offset": 1,
                            "committed_leader_epoch": -1,
                            "committed_metadata": None,
                        },
                    ],
                }
            ],
        )
        parts = committed.topics[0].partitions
        assert [(p.partition_index, p.error_code) for p in parts] == [(1, 0), (9, 3)]

        everything = await h.call(9, 5, group_id="g", topics=None)
        assert everything.error_code == 0
        (topic,) = everything.topics
        (part,) = topic.partitions
        assert (topic.name, part.partition_index, part.committed_offset) == ("t", 1, 42)
        assert (part.committed_leader_epoch, part.metadata, part.error_code) == (3, "m", 0)
        v1 = await h.call(9, 1, group_id="g", topics=[{"name": "t", "partition_indexes": [0, 1]}])
        assert [(p.partition_index, p.committed_offset) for p in v1.topics[0].partitions] == [
            (0, -1),
            (1, 42),
        ]

        described = await h.call(15, 4, groups=["g", "other"], include_authorized_operations=False)
        g, other = described.groups
        assert (g.error_code, g.group_state, g.protocol_type, g.protocol_data) == (
            0,
            "Stable",
            "consumer",
            "range",
        )
        assert [(m.member_id, m.member_metadata, m.member_assignment) for m in g.members] == [
            (member, b"sub", b"plan")
        ]
        assert (other.error_code, other.group_state, other.members) == (0, "Dead", ())
        listed = await h.call(16, 2)
        assert [(x.group_id, x.protocol_type) for x in listed.groups] == [("g", "consumer")]

        left = await h.call(
            13,
            3,
            group_id="g",
            members=[
                {"member_id": member, "group_instance_id": None},
                {"member_id": "nobody", "group_instance_id": None},
            ],
        )
        assert left.error_code == 0
        assert [(m.member_id, m.error_code) for m in left.members] == [(member, 0), ("nobody", 25)]
        again = await h.call(13, 0, group_id="g", member_id=member)
        assert again.error_code == 25  # UNKNOWN_MEMBER_ID, at the top level in v0-2

    run(tmp_path, scenario, **GROUPS)


def test_join_v0_gets_its_member_id_with_the_answer(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        fields = _join_fields()
        del fields["rebalance_timeout"], fields["group_instance_id"]
        joined = await h.call(11, 0, **fields)
        assert joined.error_code == 0
        assert joined.member_id  # an id comes with the answer: no MEMBER_ID_REQUIRED before v4
        assert joined.leader == joined.member_id
        short = await h.call(11, 0, **{**fields, "session_timeout": _ms(10)})
        assert short.error_code == 26  # INVALID_SESSION_TIMEOUT

    run(tmp_path, scenario, **GROUPS)


def test_offsets_survive_a_new_driver_on_the_same_log(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.create("t", 1)
        committed = await h.call(
            8,
            2,
            group_id="simple",
            generation_id_or_member_epoch=-1,
            member_id="",
            retention_time=i64Timedelta.parse(datetime.timedelta(milliseconds=-1)),
            topics=[
                {
                    "name": "t",
                    "partitions": [
                        {"partition_index": 0, "committed_offset": 7, "committed_metadata": ""}
                    ],
                }
            ],
        )
        assert committed.topics[0].partitions[0].error_code == 0
        topic = h.ctx.registry.get("__consumer_offsets")
        assert topic is not None
        fresh = GroupDriver(LocalOffsetsLog(topic), num_partitions=5, clock=h.clock)
        fresh.load_all()
        reply = await fresh.fetch_offsets(group_id="simple", partitions=[("t", 0)])
        assert [(f.topic, f.partition, f.offset) for f in reply.partitions] == [("t", 0, 7)]

    run(tmp_path, scenario, **GROUPS)


def test_offset_fetch_when_not_coordinator(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        assert h.ctx.groups is not None
        h.ctx.groups.unload(partition_for("g", 5))
        v1 = await h.call(9, 1, group_id="g", topics=[{"name": "t", "partition_indexes": [0]}])
        assert [p.error_code for p in v1.topics[0].partitions] == [16]  # no top-level error
        v3 = await h.call(9, 3, group_id="g", topics=None)
        assert (v3.error_code, v3.topics) == (16, ())

    run(tmp_path, scenario, **GROUPS)


def test_the_offsets_topic_is_internal_and_read_only(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        everything = await h.call(
            3,
            8,
            topics=None,
            include_cluster_authorized_operations=False,
            include_topic_authorized_operations=False,
        )
        (internal,) = [t for t in everything.topics if t.name == "__consumer_offsets"]
        assert internal.is_internal
        assert len(internal.partitions) == 5
        produced = await h.produce("__consumer_offsets", 0, build_batch([b"x"], keys=[b"k"]))
        assert produced.error_code == 17  # INVALID_TOPIC_EXCEPTION
        assert await h.create("__consumer_offsets", 1) == 36  # TOPIC_ALREADY_EXISTS

    run(tmp_path, scenario, **GROUPS)


def test_a_broker_without_groups_answers_coordinator_not_available(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        h.ctx.table = table_for(SINGLE_NODE_HANDLERS)  # the APIs, but no driver
        assert (await h.call(10, 2, key="g", key_type=0)).error_code == 15
        assert (await h.call(11, 5, **_join_fields())).error_code == 15
        assert (await h.call(12, 3, group_id="g", generation_id=1, member_id="m")).error_code == 15
        listed = await h.call(16, 0)
        assert (listed.error_code, listed.groups) == (15, ())

    run(tmp_path, scenario)
