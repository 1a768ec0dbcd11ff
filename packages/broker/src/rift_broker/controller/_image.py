"""The metadata image: the state machine that every node builds from the Raft log.

A broker learns the cluster — brokers, topics, partition assignments, leaders,
leader epochs, ISRs — by applying committed metadata records in log order to a
``MetadataImage``. The active controller decides on a copy of it.

``apply`` is total and deterministic: a record that does not fit the current
image (a stale broker epoch, a partition change whose ``partition_epoch`` is not
exactly the next one, a duplicate topic) changes nothing and returns False. The
controller validates before proposing, but two proposals can race (an old
controller's tail committed by a new one); making stale records no-ops keeps
every replica of the image identical regardless.

``snapshot``/``restore`` serialise the whole image (JSON) for Raft snapshots.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from rift_broker.controller._records import (
    CreateTopic,
    FenceBroker,
    MetadataRecord,
    PartitionChange,
    PartitionRecord,
    RegisterBroker,
    UnfenceBroker,
    decode_records,
)
from rift_broker.raft import NOOP

__all__ = ["BrokerInfo", "MetadataImage", "PartitionInfo", "TopicInfo"]


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerInfo:
    broker: int
    epoch: int
    incarnation: str
    host: str
    port: int
    rack: str | None = None
    fenced: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicInfo:
    topic: str
    topic_id: int
    partitions: int
    configs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PartitionInfo:
    topic: str
    partition: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int
    leader_epoch: int
    partition_epoch: int


class MetadataImage:
    """Brokers, topics and partitions as of ``applied_index`` of the Raft log."""

    def __init__(self) -> None:
        self.brokers: dict[int, BrokerInfo] = {}
        self.topics: dict[str, TopicInfo] = {}
        self.partitions: dict[tuple[str, int], PartitionInfo] = {}
        self.applied_index = 0

    # -- queries -------------------------------------------------------------

    def live_brokers(self) -> frozenset[int]:
        """Registered, unfenced brokers: the only ones that may lead or join an ISR."""
        return frozenset(b.broker for b in self.brokers.values() if not b.fenced)

    def partitions_of(self, topic: str) -> list[PartitionInfo]:
        info = self.topics.get(topic)
        if info is None:
            return []
        return [self.partitions[topic, p] for p in range(info.partitions)]

    def max_broker_epoch(self) -> int:
        return max((b.epoch for b in self.brokers.values()), default=0)

    def max_topic_id(self) -> int:
        return max((t.topic_id for t in self.topics.values()), default=0)

    def copy(self) -> MetadataImage:
        image = MetadataImage()
        image.brokers = dict(self.brokers)
        image.topics = dict(self.topics)
        image.partitions = dict(self.partitions)
        image.applied_index = self.applied_index
        return image

    # -- the state machine ---------------------------------------------------

    def apply_entry(self, index: int, command: bytes) -> bool:
        """Apply one committed Raft entry (a no-op, or the encoded records of one
        decision, in order); return whether any of them changed the image."""
        if index <= self.applied_index:
            return False  # already reflected (e.g. replayed after a snapshot)
        self.applied_index = index
        if command == NOOP:
            return False
        changed = [self.apply(record) for record in decode_records(command)]
        return any(changed)

    def apply(self, record: MetadataRecord) -> bool:
        """Apply ``record``; return whether it changed the image."""
        if isinstance(record, RegisterBroker):
            old = self.brokers.get(record.broker)
            if old is not None and record.epoch <= old.epoch:
                return False
            self.brokers[record.broker] = BrokerInfo(
                broker=record.broker,
                epoch=record.epoch,
                incarnation=record.incarnation,
                host=record.host,
                port=record.port,
                rack=record.rack,
                fenced=True,
            )
            return True
        if isinstance(record, FenceBroker | UnfenceBroker):
            broker = self.brokers.get(record.broker)
            fenced = isinstance(record, FenceBroker)
            if broker is None or broker.epoch != record.epoch or broker.fenced == fenced:
                return False
            self.brokers[record.broker] = dataclasses.replace(broker, fenced=fenced)
            return True
        if isinstance(record, CreateTopic):
            if record.topic in self.topics:
                return False
            self.topics[record.topic] = TopicInfo(
                topic=record.topic,
                topic_id=record.topic_id,
                partitions=record.partitions,
                configs=record.configs,
            )
            return True
        if isinstance(record, PartitionRecord):
            key = (record.topic, record.partition)
            if record.topic not in self.topics or key in self.partitions:
                return False
            self.partitions[key] = PartitionInfo(
                topic=record.topic,
                partition=record.partition,
                replicas=record.replicas,
                isr=record.isr,
                leader=record.leader,
                leader_epoch=record.leader_epoch,
                partition_epoch=record.partition_epoch,
            )
            return True
        return self._apply_change(record)

    def _apply_change(self, record: PartitionChange) -> bool:
        current = self.partitions.get((record.topic, record.partition))
        if (
            current is None
            or record.partition_epoch != current.partition_epoch + 1
            or record.leader_epoch < current.leader_epoch
        ):
            return False
        self.partitions[record.topic, record.partition] = dataclasses.replace(
            current,
            leader=record.leader,
            leader_epoch=record.leader_epoch,
            isr=record.isr,
            partition_epoch=record.partition_epoch,
        )
        return True

    # -- snapshots -----------------------------------------------------------

    def snapshot(self) -> bytes:
        doc = {
            "applied_index": self.applied_index,
            "brokers": [dataclasses.asdict(b) for b in self.brokers.values()],
            "topics": [dataclasses.asdict(t) for t in self.topics.values()],
            "partitions": [dataclasses.asdict(p) for p in self.partitions.values()],
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def restore(cls, data: bytes) -> MetadataImage:
        doc: dict[str, Any] = json.loads(data)
        image = cls()
        image.applied_index = doc["applied_index"]
        for b in doc["brokers"]:
            image.brokers[b["broker"]] = BrokerInfo(**b)
        for t in doc["topics"]:
            t["configs"] = tuple(tuple(kv) for kv in t["configs"])
            image.topics[t["topic"]] = TopicInfo(**t)
        for p in doc["partitions"]:
            p["replicas"], p["isr"] = tuple(p["replicas"]), tuple(p["isr"])
            image.partitions[p["topic"], p["partition"]] = PartitionInfo(**p)
        return image

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MetadataImage):
            return NotImplemented
        return (self.brokers, self.topics, self.partitions, self.applied_index) == (
            other.brokers,
            other.topics,
            other.partitions,
            other.applied_index,
        )

    __hash__ = None  # type: ignore[assignment]
