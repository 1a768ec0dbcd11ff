"""Which partition of ``__consumer_offsets`` owns a group (the FindCoordinator helper).

Kafka places a group with ``Utils.abs(groupId.hashCode()) % numPartitions``, where
``hashCode`` is Java's ``String.hashCode`` (a 32-bit polynomial over UTF-16 code
units) and ``Utils.abs`` maps ``Integer.MIN_VALUE`` to 0. We reproduce it exactly so
that a group lands on the same partition as on a real Kafka cluster, and so that a
``__consumer_offsets`` log written by one is read correctly by the other.

The driver answers FindCoordinator with the leader of ``partition_for(group_id, n)``.
"""

from __future__ import annotations

__all__ = ["OFFSETS_TOPIC", "OFFSETS_TOPIC_CONFIGS", "java_string_hash", "partition_for"]

OFFSETS_TOPIC = "__consumer_offsets"
#: Its configs wherever it is created or opened: committed offsets are kept forever
#: (without compaction, retention would delete a quiet group's last commit).
OFFSETS_TOPIC_CONFIGS: tuple[tuple[str, str], ...] = (
    ("retention.ms", "-1"),
    ("retention.bytes", "-1"),
)

_INT_MIN = -(2**31)


def java_string_hash(s: str) -> int:
    """Java's ``String.hashCode()`` of ``s``, as a signed 32-bit int."""
    data = s.encode("utf-16-be")  # Java strings are UTF-16: surrogate pairs count twice
    h = 0
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - 2**32 if h & 0x80000000 else h


def partition_for(group_id: str, num_partitions: int) -> int:
    """The ``__consumer_offsets`` partition that stores ``group_id`` (Kafka's formula)."""
    if num_partitions <= 0:
        raise ValueError(f"num_partitions must be positive, got {num_partitions}")
    h = java_string_hash(group_id)
    return (0 if h == _INT_MIN else abs(h)) % num_partitions
