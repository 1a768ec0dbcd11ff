"""The broker's segmented commit log.

``PartitionLog`` is the log of one partition (see ``partition.py`` for how it
works, ``recovery.py`` for what happens at open); ``AsyncGroupCommitter`` makes
appends durable under the configured flush policy.
"""

from __future__ import annotations

from rift_broker.log.async_group_commit import AsyncGroupCommitter
from rift_broker.log.config import FlushPolicy, LogConfig
from rift_broker.log.epoch_cache import EpochEntry, LeaderEpochCache
from rift_broker.log.errors import (
    BatchTooLargeError,
    CorruptBatchError,
    InvalidEpochError,
    LogError,
    LogStoppedError,
    OffsetOutOfRangeError,
    UnexpectedOffsetError,
)
from rift_broker.log.flush import FlushTicket
from rift_broker.log.group_commit import GroupCommit
from rift_broker.log.partition import AppendInfo, PartitionLog
from rift_broker.log.recovery import RecoveryEvent, RecoveryReport

__all__ = [
    "PartitionLog",
    "AppendInfo",
    "LogConfig",
    "FlushPolicy",
    "FlushTicket",
    "GroupCommit",
    "AsyncGroupCommitter",
    "LeaderEpochCache",
    "EpochEntry",
    "RecoveryReport",
    "RecoveryEvent",
    "LogError",
    "CorruptBatchError",
    "BatchTooLargeError",
    "InvalidEpochError",
    "UnexpectedOffsetError",
    "OffsetOutOfRangeError",
    "LogStoppedError",
]
