"""Topic definitions and the rules for creating them (sans-IO).

A :class:`TopicSpec` is what the broker persists per topic (one small JSON file) and
what CreateTopics validates into. :func:`validate_topic` applies Kafka's rules for
names, partition counts, replication factors and the topic configs this broker
understands; it raises the :class:`~rift_broker.errors.KafkaError` that the
CreateTopics answer carries for that topic.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from rift_broker.errors import (
    InvalidConfig,
    InvalidPartitions,
    InvalidReplicaAssignment,
    InvalidReplicationFactor,
    InvalidTopic,
)
from rift_broker.group import OFFSETS_TOPIC, OFFSETS_TOPIC_CONFIGS
from rift_broker.log import LogConfig

__all__ = [
    "MAX_PARTITIONS",
    "TopicSpec",
    "replica_log_config",
    "topic_log_config",
    "validate_name",
    "validate_topic",
]

_log = logging.getLogger("rift_broker.topics")

MAX_PARTITIONS = 10_000
_LEGAL_NAME = re.compile(r"[a-zA-Z0-9._-]{1,249}")


def _int_at_least(minimum: int) -> Any:
    def check(value: str) -> None:
        try:
            number = int(value)
        except ValueError:
            raise InvalidConfig(f"{value!r} is not an integer") from None
        if number < minimum:
            raise InvalidConfig(f"{number} is below the minimum {minimum}")

    return check


def _one_of(*choices: str) -> Any:
    def check(value: str) -> None:
        if value not in choices:
            raise InvalidConfig(
                f"{value!r} is not supported here (use one of {', '.join(choices)})"
            )

    return check


# Topic configs this broker accepts, each with its check. Anything else is rejected:
# silently ignoring a setting the user relies on would be worse.
_CONFIGS: Mapping[str, Any] = MappingProxyType(
    {
        "min.insync.replicas": _int_at_least(1),
        "retention.ms": _int_at_least(-1),
        "retention.bytes": _int_at_least(-1),
        "segment.bytes": _int_at_least(1024),
        "segment.ms": _int_at_least(1),
        "max.message.bytes": _int_at_least(0),
        "cleanup.policy": _one_of("delete"),
        "message.timestamp.type": _one_of("CreateTime"),
        "compression.type": _one_of("producer"),
        "unclean.leader.election.enable": _one_of("true", "false"),
    }
)


# Topic configs that set the partition log's settings, and the LogConfig field each sets.
_LOG_SETTINGS: Mapping[str, str] = MappingProxyType(
    {
        "segment.bytes": "segment_bytes",
        "segment.ms": "segment_ms",
        "retention.ms": "retention_ms",
        "retention.bytes": "retention_bytes",
        "max.message.bytes": "max_batch_bytes",
    }
)


def topic_log_config(base: LogConfig, configs: Mapping[str, str]) -> LogConfig:
    """The log settings of a topic: ``base`` (the broker's) overridden by its configs.

    Raises ValueError if a config is not an integer or the result is invalid.
    """
    overrides: dict[str, Any] = {
        attribute: int(configs[key]) for key, attribute in _LOG_SETTINGS.items() if key in configs
    }
    return dataclasses.replace(base, **overrides) if overrides else base


def replica_log_config(base: LogConfig, topic: str, configs: Mapping[str, str]) -> LogConfig:
    """A cluster replica's log settings: :func:`topic_log_config`, except that invalid
    configs (the controller does not check them) fall back to ``base`` with an error
    logged, and the offsets topic always has its own (even one created without them)."""
    if topic == OFFSETS_TOPIC:
        configs = {**configs, **dict(OFFSETS_TOPIC_CONFIGS)}
    try:
        return topic_log_config(base, configs)
    except ValueError as e:
        _log.error("topic %s has invalid log configs (%s); using the broker's", topic, e)
        return base


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int = 1
    configs: Mapping[str, str] = field(default_factory=dict)

    @property
    def min_insync_replicas(self) -> int:
        return int(self.configs.get("min.insync.replicas", "1"))

    def to_json(self) -> str:
        return json.dumps(
            {
                "name": self.name,
                "partitions": self.partitions,
                "replication_factor": self.replication_factor,
                "configs": dict(self.configs),
            },
            indent=2,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> TopicSpec:
        data = json.loads(text)
        return cls(
            name=str(data["name"]),
            partitions=int(data["partitions"]),
            replication_factor=int(data.get("replication_factor", 1)),
            configs={str(k): str(v) for k, v in data.get("configs", {}).items()},
        )


def validate_name(name: str) -> None:
    if name in (".", "..") or not _LEGAL_NAME.fullmatch(name):
        raise InvalidTopic(
            f"topic name {name!r} is invalid: use 1-249 of a-z A-Z 0-9 . _ - (not . or ..)"
        )


def validate_topic(
    *,
    name: str,
    num_partitions: int,
    replication_factor: int,
    assignments: Sequence[Sequence[int]] = (),
    configs: Mapping[str, str | None],
    default_partitions: int,
    live_nodes: Sequence[int],
) -> TopicSpec:
    """The spec to create, or the Kafka error for this topic of a CreateTopics request."""
    validate_name(name)
    if assignments:
        if num_partitions != -1 or replication_factor != -1:
            raise InvalidPartitions(
                "give either replica assignments or partitions and replication factor"
            )
        for replicas in assignments:
            if len(replicas) != 1 or replicas[0] not in live_nodes:
                raise InvalidReplicaAssignment(
                    f"replicas {list(replicas)} must be exactly one of the live nodes"
                    f" {list(live_nodes)}"
                )
        num_partitions = len(assignments)
        replication_factor = 1
    if num_partitions == -1:
        num_partitions = default_partitions
    if replication_factor == -1:
        replication_factor = 1
    if not 1 <= num_partitions <= MAX_PARTITIONS:
        raise InvalidPartitions(f"partitions must be 1-{MAX_PARTITIONS}, got {num_partitions}")
    if not 1 <= replication_factor <= len(live_nodes):
        raise InvalidReplicationFactor(
            f"replication factor {replication_factor} is more than the"
            f" {len(live_nodes)} live broker(s)"
        )
    clean: dict[str, str] = {}
    for key, value in configs.items():
        check = _CONFIGS.get(key)
        if check is None:
            raise InvalidConfig(f"unknown or unsupported topic config {key!r}")
        if value is None:
            continue
        try:
            check(value)
        except InvalidConfig as e:
            raise InvalidConfig(f"{key}: {e}") from None
        clean[key] = value
    return TopicSpec(
        name=name,
        partitions=num_partitions,
        replication_factor=replication_factor,
        configs=clean,
    )
