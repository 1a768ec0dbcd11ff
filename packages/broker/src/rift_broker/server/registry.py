"""The topics and partitions of this broker, and their layout on disk.

Layout under the data directory::

    <topic>.topic.json        the TopicSpec (name, partitions, configs)
    <topic>-<partition>/      that partition's log segments
    producer-ids.json         the producer id allocator's high mark

A topic's JSON file is written (fsync, rename, fsync of the directory) after its
partition directories exist, so a crash during creation leaves either no topic or a
complete one; stray partition directories without a JSON file are ignored.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from rift_broker.log import LogConfig, PartitionLog
from rift_broker.server.config import BrokerConfig
from rift_broker.server.partition import Partition
from rift_broker.server.topics import TopicSpec, topic_log_config
from rift_broker.storage import OsStorage, Storage

__all__ = ["Topic", "TopicRegistry", "log_config_for"]

_SUFFIX = ".topic.json"
_log = logging.getLogger("rift_broker.server")


@dataclass(frozen=True, slots=True, kw_only=True)
class Topic:
    spec: TopicSpec
    partitions: tuple[Partition, ...]


def log_config_for(spec: TopicSpec, config: BrokerConfig) -> LogConfig:
    """The partition log settings of a topic: broker defaults, overridden by topic configs."""
    values: dict[str, int] = {"segment_bytes": config.segment_bytes}
    if config.retention_ms is not None:
        values["retention_ms"] = config.retention_ms
    if config.retention_bytes is not None:
        values["retention_bytes"] = config.retention_bytes
    values["group_commit_max_wait_ms"] = round(config.group_commit_max_wait_ms)
    values["group_commit_max_batch"] = config.group_commit_max_batch
    values["max_batch_bytes"] = min(config.max_request_bytes, (1 << 31) - 1)
    return topic_log_config(LogConfig(**values), spec.configs)  # type: ignore[arg-type]


class TopicRegistry:
    __slots__ = ("_config", "_dir", "_on_fatal", "_storage", "_topics")

    def __init__(
        self,
        config: BrokerConfig,
        *,
        storage: Storage | None = None,
        on_fatal: Callable[[str], None] = lambda reason: None,
    ) -> None:
        self._config = config
        self._on_fatal = on_fatal
        self._storage: Storage = storage if storage is not None else OsStorage()
        self._dir = config.data_dir
        self._topics: dict[str, Topic] = {}

    def load(self, *, now_ms: int) -> None:
        """Open every topic found in the data directory."""
        self._dir.mkdir(parents=True, exist_ok=True)
        for path in sorted(self._dir.glob(f"*{_SUFFIX}")):
            spec = TopicSpec.from_json(path.read_text())
            self._topics[spec.name] = self._open(spec, now_ms=now_ms)
            _log.info("loaded topic %s (%d partitions)", spec.name, spec.partitions)

    def _open(self, spec: TopicSpec, *, now_ms: int) -> Topic:
        log_config = log_config_for(spec, self._config)
        partitions = []
        for index in range(spec.partitions):
            log = PartitionLog.open(
                str(self._dir / f"{spec.name}-{index}"),
                config=log_config,
                storage=self._storage,
                now_ms=now_ms,
            )
            partitions.append(
                Partition(
                    spec=spec,
                    index=index,
                    log=log,
                    durability=self._config.durability,
                    on_fatal=self._on_fatal,
                )
            )
        return Topic(spec=spec, partitions=tuple(partitions))

    def create(self, spec: TopicSpec, *, now_ms: int = 0) -> Topic:
        topic = self._open(spec, now_ms=now_ms)
        path = self._dir / f"{spec.name}{_SUFFIX}"
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            f.write(spec.to_json())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fd = os.open(self._dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self._topics[spec.name] = topic
        _log.info("created topic %s (%d partitions)", spec.name, spec.partitions)
        return topic

    def get(self, name: str) -> Topic | None:
        return self._topics.get(name)

    def topics(self) -> list[Topic]:
        return [self._topics[name] for name in sorted(self._topics)]

    def partition(self, topic: str, index: int) -> Partition | None:
        found = self._topics.get(topic)
        if found is None or not 0 <= index < len(found.partitions):
            return None
        return found.partitions[index]

    def partitions(self) -> Iterator[Partition]:
        for topic in self._topics.values():
            yield from topic.partitions
