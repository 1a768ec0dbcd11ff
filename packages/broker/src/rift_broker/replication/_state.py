"""The per-replica state the replica manager keeps, and the helpers both roles share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from rift_broker.log import PartitionLog
from rift_broker.producer_state import ProducerStateTable
from rift_broker.replication._follower import FollowerPartition
from rift_broker.replication._leader import LeaderPartition
from rift_broker.replication.messages import (
    Effect,
    NeedFlush,
    Observed,
    PartitionAssignment,
    ReplicaFetchRequest,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicationConfig:
    replica_lag_time_max_ms: int = 10_000
    replica_fetch_max_bytes: int = 1 << 20
    replica_fetch_wait_ms: int = 500
    request_timeout_ms: int = 3_000
    # After an error answer (the leader does not know it leads yet, a stale epoch),
    # a follower asks again this much later rather than a whole request timeout.
    replica_fetch_backoff_ms: int = 100

    def __post_init__(self) -> None:
        for name in (
            "replica_lag_time_max_ms",
            "replica_fetch_max_bytes",
            "request_timeout_ms",
            "replica_fetch_backoff_ms",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.replica_fetch_wait_ms < 0:
            raise ValueError("replica_fetch_wait_ms must be >= 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadResult:
    error: int
    records: bytes = b""
    high_watermark: int = -1
    log_start_offset: int = -1
    log_end_offset: int = -1


@dataclass(slots=True, kw_only=True)
class Waiter:
    request_id: int
    last_offset: int
    base_offset: int
    acks: int


@dataclass(slots=True)
class Replica:
    assignment: PartitionAssignment
    log: PartitionLog
    producers: ProducerStateTable
    leader: LeaderPartition | None = None
    follower: FollowerPartition | None = None
    waiters: list[Waiter] = field(default_factory=list)
    parked: list[tuple[ReplicaFetchRequest, int]] = field(default_factory=list)
    flushing: bool = False
    flush_again: bool = False
    inflight_deadline: int | None = None
    last_hw: int = -1


# ``open_log(topic, partition, topic_configs)``: the replica's log, opened (recovered)
# with the topic's settings, and the producer state rebuilt from it.
OpenLog = Callable[[str, int, tuple[tuple[str, str], ...]], tuple[PartitionLog, ProducerStateTable]]


class ReplicaBase:
    """Attributes and helpers shared by the leader and follower halves of the manager."""

    node_id: int
    config: ReplicationConfig
    _replicas: dict[tuple[str, int], Replica]

    # -- shared ----------------------------------------------------------------------

    def _request_flush(self, replica: Replica) -> list[Effect]:
        if replica.flushing:
            replica.flush_again = True
            return []
        replica.flushing = True
        return [NeedFlush(topic=replica.assignment.topic, partition=replica.assignment.partition)]

    def _high_watermark(self, replica: Replica) -> int:
        if replica.leader is not None:
            return replica.leader.high_watermark
        if replica.follower is not None:
            return replica.follower.high_watermark
        return max(replica.last_hw, 0)

    def _hw_moved(self, replica: Replica, now_ms: int) -> list[Effect]:
        leader = replica.leader
        if leader is None or leader.high_watermark == replica.last_hw:
            return []
        replica.last_hw = leader.high_watermark
        # A new leader starts from the HW it knew as a follower, which may trail its
        # predecessor's. Once its HW reaches the start of its own epoch it covers
        # everything any earlier leader committed, so from then on the HW it reports
        # never goes below one reported before (consumers never saw a regression:
        # a fetch above the HW simply waits).
        if leader.high_watermark < leader.epoch_start_offset:
            return []
        return [
            Observed(
                kind="high-watermark",
                topic=replica.assignment.topic,
                partition=replica.assignment.partition,
                value={
                    "offset": leader.high_watermark,
                    "epoch": leader.leader_epoch,
                    "node": self.node_id,
                },
            )
        ]

    def _observe_leader(self, replica: Replica) -> Observed:
        assert replica.leader is not None
        return Observed(
            kind="leader",
            topic=replica.assignment.topic,
            partition=replica.assignment.partition,
            value={"epoch": replica.leader.leader_epoch, "node": self.node_id},
        )
