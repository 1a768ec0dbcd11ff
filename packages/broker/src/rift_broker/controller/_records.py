"""Metadata records: the commands of the Raft log, and their compact encoding.

Every change to cluster metadata is one of these frozen values, proposed by the
active controller and applied, in log order, by every node's ``MetadataImage``.
They encode as one JSON object with a ``"type"`` key (sorted keys, no spaces), so
the bytes in the log are stable and readable in a hex dump.

The records of one controller decision are one Raft entry (``encode_records``: the
record alone, or a JSON array of several), so they commit together or not at all,
like KRaft's atomic record batches: a controller that dies half-way through
replicating a decision must not leave its successor a topic without partitions,
or a broker fenced while its partitions keep the fenced leader.

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
from collections.abc import Sequence
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
    "encode_records",
    "decode_records",
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


def encode_records(records: Sequence[MetadataRecord]) -> bytes:
    """One Raft command for ``records`` (at least one), applied all in one step."""
    if not records:
        raise ValueError("a decision with no records proposes nothing")
    if len(records) == 1:
        return encode_record(records[0])
    return b"[" + b",".join(encode_record(r) for r in records) + b"]"


def decode_records(data: bytes) -> list[MetadataRecord]:
    """Decode ``encode_records``'s (or ``encode_record``'s) bytes, in order."""
    if not data.startswith(b"["):
        return [decode_record(data)]
    try:
        items = json.loads(data)
    except ValueError as e:
        raise ValueError(f"not a metadata record batch: {data[:80]!r}") from e
    if not isinstance(items, list) or not items:
        raise ValueError(f"not a metadata record batch: {data[:80]!r}")
    return [_decode_fields(item, data) for item in items]


def decode_record(data: bytes) -> MetadataRecord:
    """Decode ``encode_record``'s bytes; raise ``ValueError`` for anything else."""
    try:
        fields: Any = json.loads(data)
    except ValueError as e:
        raise ValueError(f"not a metadata record: {data[:80]!r}") from e
    return _decode_fields(fields, data)


def _decode_fields(fields: Any, data: bytes) -> MetadataRecord:
    try:
        cls = _TYPES[fields.pop("type")]
    except (KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"not a metadata record: {data[:80]!r}") from e
    for name, value in fields.items():
        if isinstance(value, list):  # JSON has no tuples
            fields[name] = tuple(tuple(v) if isinstance(v, list) else v for v in value)
    try:
        return cls(**fields)
    except TypeError as e:
        raise ValueError(f"bad {cls.__name__} record: {e}") from e
