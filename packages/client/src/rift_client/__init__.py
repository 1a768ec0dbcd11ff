"""rift_client: a Kafka-protocol client that says whether each outcome is definite.

asyncio API: :class:`Producer`, :class:`Consumer`, :class:`Admin`; a blocking
facade with the same methods lives in :mod:`rift_client.sync`. Every produce
result is a :class:`DeliveryReport` (``ok`` / ``definite`` / ``status``); every
error is a :class:`ClientError` carrying ``retriable`` and ``definite``. The rule
for definite versus unknown outcomes is in :mod:`rift_client.outcome`.

Consumer groups: ``Consumer(..., group_id=...)`` with ``subscribe`` / ``commit`` /
``commit_async`` / ``committed``; the membership machine is :mod:`rift_client.group`
and the assignors (``sticky``, ``range``) are :mod:`rift_client.assignor`.
"""

from __future__ import annotations

from rift_client import assignor, errors, group
from rift_client.admin import Admin
from rift_client.assignor import MemberSubscription, range_assign, sticky_assign
from rift_client.compression import Compression
from rift_client.consumer import Consumer
from rift_client.errors import (
    BrokerUnreachable,
    ClientClosed,
    ClientError,
    ClientTimeout,
    ConnectionLost,
    InvalidArgument,
    KafkaError,
    ProtocolError,
    UnsupportedVersion,
)
from rift_client.outcome import DeliveryReport, RetryPolicy, Status, status_of
from rift_client.partitioner import Partitioner, murmur2, partition_for_key
from rift_client.producer import Producer
from rift_client.records import Record, RecordBatch, decode_batches, encode_batch
from rift_client.types import (
    BrokerInfo,
    ConsumerRecord,
    NewTopic,
    PartitionInfo,
    TopicInfo,
    TopicPartition,
)

__all__ = [
    # clients
    "Producer",
    "Consumer",
    "Admin",
    # values
    "TopicPartition",
    "NewTopic",
    "ConsumerRecord",
    "DeliveryReport",
    "Status",
    "status_of",
    "BrokerInfo",
    "PartitionInfo",
    "TopicInfo",
    "Compression",
    # errors
    "errors",
    "ClientError",
    "KafkaError",
    "InvalidArgument",
    "ClientClosed",
    "ClientTimeout",
    "ConnectionLost",
    "BrokerUnreachable",
    "ProtocolError",
    "UnsupportedVersion",
    # building blocks
    "RetryPolicy",
    "Partitioner",
    "murmur2",
    "partition_for_key",
    "Record",
    "RecordBatch",
    "encode_batch",
    "decode_batches",
    # consumer groups
    "assignor",
    "group",
    "MemberSubscription",
    "sticky_assign",
    "range_assign",
]
