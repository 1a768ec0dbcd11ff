"""Values the replica manager exchanges with peers, the controller and its driver.

Peer messages (``ReplicaFetch*``, ``EpochQuery``/``EpochAnswer``) carry partition
data between brokers: followers pull from the leader, asking first where their
latest epoch ends on the leader (OffsetForLeaderEpoch) and then fetching from their
log end. Every request carries the sender's view of the leader epoch, and a leader
answers a stale one with FENCED_LEADER_EPOCH and a newer one with
UNKNOWN_LEADER_EPOCH, so two brokers that disagree about who leads never exchange
data.

Effects are what a call on the manager asks its driver to do.
"""

from __future__ import annotations

from dataclasses import dataclass

from kio.schema.errors import ErrorCode

from rift_broker.replication._leader import IsrChange

NONE: int = int(ErrorCode.none.value)
OFFSET_OUT_OF_RANGE: int = int(ErrorCode.offset_out_of_range.value)
OFFSET_NOT_AVAILABLE: int = int(ErrorCode.offset_not_available.value)
UNKNOWN_TOPIC_OR_PARTITION: int = int(ErrorCode.unknown_topic_or_partition.value)
NOT_LEADER_OR_FOLLOWER: int = int(ErrorCode.not_leader_or_follower.value)
REQUEST_TIMED_OUT: int = int(ErrorCode.request_timed_out.value)
NOT_ENOUGH_REPLICAS: int = int(ErrorCode.not_enough_replicas.value)
NOT_ENOUGH_REPLICAS_AFTER_APPEND: int = int(ErrorCode.not_enough_replicas_after_append.value)
KAFKA_STORAGE_ERROR: int = int(ErrorCode.kafka_storage_error.value)
FENCED_LEADER_EPOCH: int = int(ErrorCode.fenced_leader_epoch.value)
UNKNOWN_LEADER_EPOCH: int = int(ErrorCode.unknown_leader_epoch.value)


@dataclass(frozen=True, slots=True, kw_only=True)
class PartitionAssignment:
    """The metadata of one partition as the controller last committed it."""

    topic: str
    partition: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int | None
    leader_epoch: int
    partition_epoch: int
    min_insync_replicas: int = 1
    # The topic's configs (retention.ms, segment.bytes, ...): read when the replica's
    # log is opened.
    configs: tuple[tuple[str, str], ...] = ()


# -- peer messages -------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicaFetchRequest:
    src: int
    dst: int
    topic: str
    partition: int
    leader_epoch: int
    fetch_offset: int
    max_bytes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicaFetchResponse:
    src: int
    dst: int
    topic: str
    partition: int
    leader_epoch: int
    error: int
    high_watermark: int
    log_start_offset: int
    records: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class EpochQuery:
    """OffsetForLeaderEpoch: where does ``epoch`` end in your log?"""

    src: int
    dst: int
    topic: str
    partition: int
    leader_epoch: int  # the asker's view of the current leader epoch
    epoch: int


@dataclass(frozen=True, slots=True, kw_only=True)
class EpochAnswer:
    src: int
    dst: int
    topic: str
    partition: int
    leader_epoch: int
    error: int
    epoch: int
    end_offset: int


PeerMessage = ReplicaFetchRequest | ReplicaFetchResponse | EpochQuery | EpochAnswer


# -- effects -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SendToPeer:
    message: PeerMessage


@dataclass(frozen=True, slots=True, kw_only=True)
class ProduceDone:
    """The answer to one partition of a produce request."""

    request_id: int
    topic: str
    partition: int
    error: int
    base_offset: int = -1
    log_start_offset: int = -1


@dataclass(frozen=True, slots=True, kw_only=True)
class NeedFlush:
    """Make the partition's log durable, then call ``on_flushed``."""

    topic: str
    partition: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ProposeIsr:
    """Send this ISR change to the active controller (AlterPartition)."""

    change: IsrChange


@dataclass(frozen=True, slots=True, kw_only=True)
class Observed:
    """A fact for the history: ``kind`` is ``leader`` or ``high-watermark``."""

    kind: str
    topic: str
    partition: int
    value: dict[str, int]


Effect = SendToPeer | ProduceDone | NeedFlush | ProposeIsr | Observed


@dataclass(frozen=True, slots=True, kw_only=True)
class Maintained:
    """A maintenance round that deleted segments of one replica's log, or failed on
    it (for the driver to log)."""

    topic: str
    partition: int
    deleted: int = 0  # segments deleted by retention
    log_start_offset: int = -1
    error: str | None = None
