"""Metadata records: the commands of the Raft log, and their compact encoding.

Every change to cluster metadata is one of these frozen values, proposed by the
active controller and applied, in log order, by every node's ``MetadataImage``.
They encode as one JSON object with a ``"type"`` key (sorted keys, no spaces), so
the bytes in the log are stable and readable in a hex dump.

=================  ==========================================================
record             meaning
=================  ==========================================================
RegisterBroker     a broker (re)registered with a new, higher broker epoch;
                   it starts fenced
FenceBroker        the broker (at that epoch) may lead or follow nothing
UnfenceBroker      the broker (at that epoch) is live again
CreateTopic        a topic exists, with its partition count and configs
PartitionRecord    a partition's assignment and first leader/ISR
PartitionChange    a new leader and/or ISR; applies only if ``partition_epoch``
                   is exactly one more than the current one
=================  ==========================================================
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

__all__ = [
    "NO_LEADER",
    "RegisterBroker",
    "FenceBroker",
    "UnfenceBroker",
    "CreateTopic",
    "PartitionRecord",
    "PartitionChange",
    "MetadataRecord",
    "encode_record",
    "decode_record",
]

#: The leader of a partition that has none (Kafka's -1).
NO_LEADER = -1


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterBroker:
    broker: int
    epoch: int  # the broker epoch: grows with every registration of this broker
    incarnation: str  # the broker process's id: a retried registration is idempotent
    host: str
    port: int
    rack: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FenceBroker:
    broker: int
    epoch: int


@dataclass(frozen=True, slots=True, kw_only=True)
class UnfenceBroker:
    broker: int
    epoch: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateTopic:
    topic: str
    topic_id: int
    partitions: int
    configs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PartitionRecord:
    topic: str
    partition: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int
    leader_epoch: int = 0
    partition_epoch: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class PartitionChange:
    """The new state of a partition. ``leader_epoch`` grows when the leader
    changes; ``partition_epoch`` grows with every change (leader or ISR)."""

    topic: str
    partition: int
    leader: int
    leader_epoch: int
    isr: tuple[int, ...]
    partition_epoch: int


MetadataRecord = (
    RegisterBroker | FenceBroker | UnfenceBroker | CreateTopic | PartitionRecord | PartitionChange
)

_TYPES: dict[str, type[MetadataRecord]] = {
    cls.__name__: cls
    for cls in (
        RegisterBroker,
        FenceBroker,
        UnfenceBroker,
        CreateTopic,
        PartitionRecord,
        PartitionChange,
    )
}


def encode_record(record: MetadataRecord) -> bytes:
    fields = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
    fields["type"] = type(record).__name__
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def decode_record(data: bytes) -> MetadataRecord:
    """Decode ``encode_record``'s bytes; raise ``ValueError`` for anything else."""
    try:
        fields: dict[str, Any] = json.loads(data)
        cls = _TYPES[fields.pop("type")]
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"not a metadata record: {data[:80]!r}") from e
    for name, value in fields.items():
        if isinstance(value, list):  # JSON has no tuples
            fields[name] = tuple(tuple(v) if isinstance(v, list) else v for v in value)
    try:
        return cls(**fields)
    except TypeError as e:
        raise ValueError(f"bad {cls.__name__} record: {e}") from e
