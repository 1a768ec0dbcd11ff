"""Values the public API hands out and takes in."""

from __future__ import annotations

from dataclasses import dataclass

from rift_client.records import Header

__all__ = [
    "TopicPartition",
    "BrokerInfo",
    "PartitionInfo",
    "TopicInfo",
    "NewTopic",
    "ConsumerRecord",
]


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class TopicPartition:
    topic: str
    partition: int


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerInfo:
    node: int
    host: str
    port: int
    rack: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PartitionInfo:
    """One partition as the metadata says. ``leader`` is -1 while there is none."""

    topic: str
    partition: int
    leader: int
    epoch: int
    replicas: tuple[int, ...] = ()
    isr: tuple[int, ...] = ()
    offline_replicas: tuple[int, ...] = ()
    error: int = 0

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(topic=self.topic, partition=self.partition)


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicInfo:
    name: str
    partitions: tuple[PartitionInfo, ...]
    internal: bool = False
    error: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class NewTopic:
    """A topic to create; ``configs`` such as ``{"min.insync.replicas": "2"}``."""

    name: str
    partitions: int = 1
    replication_factor: int = 1
    configs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...] = ()
    timestamp_ms: int = -1
    leader_epoch: int = -1
