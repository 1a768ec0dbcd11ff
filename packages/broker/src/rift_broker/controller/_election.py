"""Partition leader elections and ISR changes as pure functions.

Whether a partition needs a leader, whom to elect, what a fenced broker's
partitions become, and whether a leader's AlterPartition request may change an
ISR — decided here from a ``PartitionInfo`` and the set of live brokers, with no
state of their own, so each is tested on its own (tables in the unit tests).

Election rule (Kafka's): the first replica *in assignment order* that is both in
the ISR and live. Only if none is, and unclean election is enabled, the first
live replica outside the ISR — it may lack acknowledged records, which is why it
is off by default. With no candidate at all the partition goes leaderless
(``NO_LEADER``) and keeps its last ISR, so that an ISR member that comes back
can be elected cleanly.

Every leader change bumps the leader epoch; every change bumps the partition
epoch. An AlterPartition request must carry the current leader epoch and
partition epoch: a deposed or stale leader's request is rejected.
"""

from __future__ import annotations

import enum
from collections.abc import Set
from dataclasses import dataclass

from rift_broker.controller._image import PartitionInfo
from rift_broker.controller._records import NO_LEADER, PartitionChange

__all__ = [
    "AlterPartitionRequest",
    "ErrorCode",
    "alter_partition",
    "choose_leader",
    "elect",
    "needs_election",
    "remove_from_isr",
]


class ErrorCode(enum.IntEnum):
    """The Kafka error codes the controller answers with."""

    NONE = 0
    UNKNOWN_TOPIC_OR_PARTITION = 3
    NOT_LEADER_OR_FOLLOWER = 6
    INVALID_TOPIC_EXCEPTION = 17
    TOPIC_ALREADY_EXISTS = 36
    INVALID_PARTITIONS = 37
    INVALID_REPLICATION_FACTOR = 38
    NOT_CONTROLLER = 41
    INVALID_REQUEST = 42
    FENCED_LEADER_EPOCH = 74
    UNKNOWN_LEADER_EPOCH = 75
    STALE_BROKER_EPOCH = 77
    BROKER_ID_NOT_REGISTERED = 102
    INELIGIBLE_REPLICA = 107
    INVALID_UPDATE_VERSION = 108


def needs_election(partition: PartitionInfo, live: Set[int]) -> bool:
    """Whether the partition lacks a live leader."""
    return partition.leader == NO_LEADER or partition.leader not in live


def choose_leader(
    partition: PartitionInfo, live: Set[int], *, unclean: bool = False
) -> tuple[int, bool] | None:
    """``(leader, clean)`` for the partition, or None if nobody may lead."""
    for replica in partition.replicas:
        if replica in partition.isr and replica in live:
            return replica, True
    if unclean:
        for replica in partition.replicas:
            if replica in live:
                return replica, False
    return None


def elect(
    partition: PartitionInfo, live: Set[int], *, unclean: bool = False
) -> PartitionChange | None:
    """The change that gives the partition a live leader, or None if none is needed
    or possible (a leaderless partition is not re-recorded as leaderless)."""
    if not needs_election(partition, live):
        return None
    choice = choose_leader(partition, live, unclean=unclean)
    if choice is None:
        if partition.leader == NO_LEADER:
            return None
        return _change(partition, leader=NO_LEADER, isr=partition.isr)
    leader, clean = choice
    isr = tuple(r for r in partition.isr if r in live) if clean else (leader,)
    return _change(partition, leader=leader, isr=isr)


def remove_from_isr(
    partition: PartitionInfo, broker: int, live: Set[int], *, unclean: bool = False
) -> PartitionChange | None:
    """What the partition becomes once ``broker`` is fenced (``live`` excludes it).

    A fenced leader is replaced (``elect``); a fenced follower leaves the ISR,
    unless it is the last member (the ISR never becomes empty).
    """
    if partition.leader == broker:
        return elect(partition, live, unclean=unclean)
    if broker in partition.isr and len(partition.isr) > 1:
        isr = tuple(r for r in partition.isr if r != broker)
        return _change(partition, leader=partition.leader, isr=isr)
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class AlterPartitionRequest:
    """A partition leader asks to set the ISR (Kafka's AlterPartition)."""

    broker: int
    broker_epoch: int
    topic: str
    partition: int
    leader_epoch: int
    partition_epoch: int
    isr: tuple[int, ...]


def alter_partition(
    partition: PartitionInfo | None,
    request: AlterPartitionRequest,
    *,
    broker_epoch: int | None,
    live: Set[int],
) -> PartitionChange | ErrorCode:
    """Validate an ISR change; return the change to propose or why it is refused.

    ``broker_epoch`` is the requester's registered epoch (None if unregistered);
    ``live`` the unfenced brokers. Checks, in order: the partition exists; the
    requester's broker epoch is current; the leader epoch is current (older:
    FENCED_LEADER_EPOCH, newer: UNKNOWN_LEADER_EPOCH); the requester leads; the
    partition epoch is current (else INVALID_UPDATE_VERSION: the leader decided on
    a stale ISR); the new ISR holds the leader, only assigned replicas, no
    duplicates; every replica it adds is live (else INELIGIBLE_REPLICA).
    """
    if partition is None:
        return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    if broker_epoch is None:
        return ErrorCode.BROKER_ID_NOT_REGISTERED
    if request.broker_epoch != broker_epoch:
        return ErrorCode.STALE_BROKER_EPOCH
    if request.leader_epoch < partition.leader_epoch:
        return ErrorCode.FENCED_LEADER_EPOCH
    if request.leader_epoch > partition.leader_epoch:
        return ErrorCode.UNKNOWN_LEADER_EPOCH
    if request.broker != partition.leader:
        return ErrorCode.NOT_LEADER_OR_FOLLOWER
    if request.partition_epoch != partition.partition_epoch:
        return ErrorCode.INVALID_UPDATE_VERSION
    isr = request.isr
    if (
        partition.leader not in isr
        or len(set(isr)) != len(isr)
        or not set(isr) <= set(partition.replicas)
    ):
        return ErrorCode.INVALID_REQUEST
    if any(r not in live for r in isr if r not in partition.isr):
        return ErrorCode.INELIGIBLE_REPLICA
    return _change(partition, leader=partition.leader, isr=isr)


def _change(partition: PartitionInfo, *, leader: int, isr: tuple[int, ...]) -> PartitionChange:
    bump = 1 if leader != partition.leader else 0
    return PartitionChange(
        topic=partition.topic,
        partition=partition.partition,
        leader=leader,
        leader_epoch=partition.leader_epoch + bump,
        isr=isr,
        partition_epoch=partition.partition_epoch + 1,
    )
