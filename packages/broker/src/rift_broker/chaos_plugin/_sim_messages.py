"""What simulated client processes and simulated brokers say to each other.

These stand in for Kafka requests on a socket: a produce, a consumer fetch (served
by the leader up to its high watermark), a topic creation. Every answer carries
the node's idea of the partition's leader, the way a Kafka client refreshes its
metadata after NOT_LEADER_OR_FOLLOWER.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class ProduceCall:
    request_id: int
    topic: str
    partition: int
    batch: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ProduceAnswer:
    request_id: int
    error: int
    base_offset: int
    leader: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadCall:
    request_id: int
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadAnswer:
    request_id: int
    error: int
    records: tuple[tuple[int, int], ...]  # (offset, value)
    high_watermark: int
    leader: str | None
    log_start_offset: int = 0  # with OFFSET_OUT_OF_RANGE: where reading may start


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateTopicCall:
    request_id: int
    topic: str
    partitions: int
    min_insync_replicas: int
    configs: tuple[tuple[str, str], ...] = ()  # more topic configs (retention, segments)


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateTopicAnswer:
    request_id: int
    error: int


CLIENT_CALLS = (ProduceCall, ReadCall, CreateTopicCall)
