"""Partition replication: the leader's ISR and high watermark, the follower's truncation.

Both halves are sans-IO cores (DESIGN.md Rule 1): they are told what happened
(an append, a follower fetch, a timer tick, a leader's epoch answer) and the time,
and they answer with decisions. The server's driver moves bytes and calls them.
"""

from __future__ import annotations

from rift_broker.replication._follower import (
    EpochEndOffset,
    FollowerPartition,
    truncation_offset,
)
from rift_broker.replication._leader import (
    AckDecision,
    IsrChange,
    LeaderPartition,
    ReplicaProgress,
)
from rift_broker.replication._retention import (
    follower_log_start,
    out_of_range_restart,
    retention_limit,
)
from rift_broker.replication._state import ReadResult, ReplicationConfig
from rift_broker.replication.manager import ReplicaManager
from rift_broker.replication.messages import Maintained, PartitionAssignment

__all__ = [
    "ReplicaManager",
    "ReplicationConfig",
    "ReadResult",
    "PartitionAssignment",
    "LeaderPartition",
    "ReplicaProgress",
    "IsrChange",
    "AckDecision",
    "FollowerPartition",
    "EpochEndOffset",
    "truncation_offset",
    "retention_limit",
    "follower_log_start",
    "out_of_range_restart",
    "Maintained",
]
