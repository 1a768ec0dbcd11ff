"""Small server pieces: topic rules, settings, byte budgets, producer ids."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from rift_broker.errors import (
    ConfigError,
    InvalidConfig,
    InvalidPartitions,
    InvalidReplicaAssignment,
    InvalidReplicationFactor,
    InvalidTopic,
    kafka_error,
)
from rift_broker.server.budget import ByteBudget
from rift_broker.server.config import BrokerConfig, parse_listen
from rift_broker.server.producer_ids import ProducerIdAllocator
from rift_broker.server.topics import TopicSpec, validate_topic


def _validate(**overrides: object) -> TopicSpec:
    args: dict[str, object] = {
        "name": "t",
        "num_partitions": 3,
        "replication_factor": 1,
        "configs": {},
        "default_partitions": 2,
        "live_nodes": (0,),
    }
    args.update(overrides)
    return validate_topic(**args)  # type: ignore[arg-type]


def test_topic_defaults_and_assignments() -> None:
    assert _validate(num_partitions=-1, replication_factor=-1).partitions == 2
    assert (
        _validate(num_partitions=-1, replication_factor=-1, assignments=[[0], [0]]).partitions == 2
    )
    spec = _validate(configs={"min.insync.replicas": "1", "retention.ms": "-1", "segment.ms": None})
    assert dict(spec.configs) == {"min.insync.replicas": "1", "retention.ms": "-1"}
    assert TopicSpec.from_json(spec.to_json()) == spec


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"name": ""}, InvalidTopic),
        ({"name": ".."}, InvalidTopic),
        ({"name": "x" * 250}, InvalidTopic),
        ({"name": "a/b"}, InvalidTopic),
        ({"num_partitions": 0}, InvalidPartitions),
        ({"num_partitions": 10_001}, InvalidPartitions),
        ({"replication_factor": 2}, InvalidReplicationFactor),
        (
            {"assignments": [[1]], "num_partitions": -1, "replication_factor": -1},
            InvalidReplicaAssignment,
        ),
        ({"assignments": [[0]]}, InvalidPartitions),
        ({"configs": {"min.insync.replicas": "zero"}}, InvalidConfig),
        ({"configs": {"min.insync.replicas": "0"}}, InvalidConfig),
        ({"configs": {"cleanup.policy": "compact"}}, InvalidConfig),
        ({"configs": {"made.up": "1"}}, InvalidConfig),
    ],
)
def test_topic_rules(overrides: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        _validate(**overrides)


def test_error_table() -> None:
    assert kafka_error(45).__name__ == "OutOfOrderSequence"
    assert kafka_error(3).retriable
    with pytest.raises(KeyError):
        kafka_error(9999)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9092", ("127.0.0.1", 9092)),
        ("[::1]:0", ("::1", 0)),
        ("localhost:1", ("localhost", 1)),
    ],
)
def test_parse_listen(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["9092", ":9092", "host:", "host:x", "host:65536"])
def test_parse_listen_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_listen(text)


def test_config_checks(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        BrokerConfig(data_dir=tmp_path, durability="maybe")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        BrokerConfig(data_dir=tmp_path, max_request_bytes=10, max_inflight_bytes_per_connection=5)
    with pytest.raises(ConfigError):
        BrokerConfig(data_dir=tmp_path, default_partitions=0)
    assert BrokerConfig(data_dir=tmp_path, host="0.0.0.0").advertised == ("127.0.0.1", 9092)
    assert BrokerConfig(data_dir=tmp_path, advertised_host="h", advertised_port=1).advertised == (
        "h",
        1,
    )


def test_byte_budget_is_fifo_and_clamps() -> None:
    async def scenario() -> None:
        budget = ByteBudget(100)
        assert await budget.acquire(60) == 60
        big = asyncio.create_task(budget.acquire(1_000))  # clamped to 100: waits for all
        await asyncio.sleep(0)
        small = asyncio.create_task(budget.acquire(10))  # FIFO: waits behind big
        await asyncio.sleep(0)
        assert not big.done()
        assert not small.done()
        budget.release(60)
        assert await big == 100
        assert not small.done()
        budget.release(100)
        assert await small == 10
        assert budget.in_use == 10
        waiting = asyncio.create_task(budget.acquire(100))
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        budget.release(10)
        assert budget.in_use == 0

    asyncio.run(scenario())
    with pytest.raises(ValueError, match="positive"):
        ByteBudget(0)


def test_producer_ids_never_repeat_across_restarts(tmp_path: Path) -> None:
    first = ProducerIdAllocator(tmp_path)
    ids = [first.allocate() for _ in range(3)]
    second = ProducerIdAllocator(tmp_path)
    assert second.allocate() > max(ids)


def test_broker_needs_a_handler_for_every_api_in_its_table(tmp_path: Path) -> None:
    from rift_broker.protocol import DEFAULT_TABLE, GROUP_APIS, ApiKey
    from rift_broker.server import Broker
    from rift_broker.server.handlers import HANDLERS

    with pytest.raises(ValueError, match="JOIN_GROUP"):
        Broker(
            BrokerConfig(data_dir=tmp_path),
            table=DEFAULT_TABLE.with_apis(GROUP_APIS),
            handlers=HANDLERS,
        )
    # By default the table follows the handlers: the group APIs come with theirs.
    assert Broker(BrokerConfig(data_dir=tmp_path))._table.get(ApiKey.JOIN_GROUP) is not None
    assert Broker(BrokerConfig(data_dir=tmp_path), handlers=HANDLERS)._table.get(22) is not None
    assert Broker(BrokerConfig(data_dir=tmp_path), handlers=HANDLERS)._table.get(11) is None
