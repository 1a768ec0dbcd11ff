"""The records of ``__consumer_offsets``: Kafka's own binary key/value formats.

A committed offset and a group's metadata are each one record of the compacted topic,
keyed so that compaction keeps the last value per key and a ``None`` value (tombstone)
deletes it. We write exactly what Kafka's ``GroupMetadataManager`` writes, so the two
can read each other's logs (all integers big-endian; ``string`` = int16 length + UTF-8,
``nullable string`` uses length -1 for null, ``bytes`` = int32 length + data, arrays =
int32 count + items):

=====================  =======  ==========================================================
record                 version  fields
=====================  =======  ==========================================================
OffsetCommitKey        1        group string, topic string, partition int32
OffsetCommitValue      3        offset int64, leader_epoch int32, metadata string,
                                commit_timestamp int64
GroupMetadataKey       2        group string
GroupMetadataValue     3        protocol_type string, generation int32, protocol nullable
                                string, leader nullable string, current_state_timestamp
                                int64, members [member_id string, group_instance_id
                                nullable string, client_id string, client_host string,
                                rebalance_timeout int32, session_timeout int32,
                                subscription bytes, assignment bytes]
=====================  =======  ==========================================================

Each key and value starts with its int16 version. Keys of version 0 and 1 are offset
keys, version 2 a group key. Decoding also accepts the older value versions Kafka
wrote (offset values 0-2, group values 0-2), so a log from an older broker loads.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from rift_broker.errors import BrokerError

__all__ = [
    "OffsetsRecord",
    "OffsetKey",
    "OffsetValue",
    "GroupKey",
    "GroupValue",
    "MemberValue",
    "RecordFormatError",
    "encode_offset",
    "encode_group",
    "decode_key",
    "decode_offset_value",
    "decode_group_value",
]


class RecordFormatError(BrokerError, ValueError):
    """A ``__consumer_offsets`` record does not decode (unknown version or truncated)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OffsetsRecord:
    """One record to append to (or loaded from) ``__consumer_offsets``; ``None`` = tombstone."""

    key: bytes
    value: bytes | None


@dataclass(frozen=True, slots=True, kw_only=True)
class OffsetKey:
    group_id: str
    topic: str
    partition: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OffsetValue:
    offset: int
    leader_epoch: int = -1
    metadata: str = ""
    commit_timestamp_ms: int = -1


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupKey:
    group_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberValue:
    member_id: str
    group_instance_id: str | None = None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    subscription: bytes
    assignment: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupValue:
    protocol_type: str
    generation: int
    protocol: str | None
    leader: str | None
    state_timestamp_ms: int = -1
    members: tuple[MemberValue, ...] = ()


# -- writing ---------------------------------------------------------------------


def _str(s: str | None) -> bytes:
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def _bytes(b: bytes) -> bytes:
    return struct.pack(">i", len(b)) + b


def encode_offset(key: OffsetKey, value: OffsetValue | None) -> OffsetsRecord:
    """The record committing ``value`` for ``key`` (a tombstone when ``value`` is None)."""
    k = struct.pack(">h", 1) + _str(key.group_id) + _str(key.topic)
    k += struct.pack(">i", key.partition)
    if value is None:
        return OffsetsRecord(key=k, value=None)
    v = struct.pack(">hqi", 3, value.offset, value.leader_epoch) + _str(value.metadata)
    v += struct.pack(">q", value.commit_timestamp_ms)
    return OffsetsRecord(key=k, value=v)


def encode_group(key: GroupKey, value: GroupValue | None) -> OffsetsRecord:
    """The record storing a group's metadata (a tombstone when ``value`` is None)."""
    k = struct.pack(">h", 2) + _str(key.group_id)
    if value is None:
        return OffsetsRecord(key=k, value=None)
    parts = [
        struct.pack(">h", 3),
        _str(value.protocol_type),
        struct.pack(">i", value.generation),
        _str(value.protocol),
        _str(value.leader),
        struct.pack(">qi", value.state_timestamp_ms, len(value.members)),
    ]
    for m in value.members:
        parts += [_str(m.member_id), _str(m.group_instance_id), _str(m.client_id)]
        parts += [_str(m.client_host)]
        parts.append(struct.pack(">ii", m.rebalance_timeout_ms, m.session_timeout_ms))
        parts += [_bytes(m.subscription), _bytes(m.assignment)]
    return OffsetsRecord(key=k, value=b"".join(parts))


# -- reading ---------------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def _take(self, fmt: str) -> int:
        size = struct.calcsize(fmt)
        if self._pos + size > len(self._data):
            raise RecordFormatError("truncated __consumer_offsets record")
        (n,) = struct.unpack_from(fmt, self._data, self._pos)
        self._pos += size
        return int(n)

    def i16(self) -> int:
        return self._take(">h")

    def i32(self) -> int:
        return self._take(">i")

    def i64(self) -> int:
        return self._take(">q")

    def raw(self, n: int) -> bytes:
        if n < 0 or self._pos + n > len(self._data):
            raise RecordFormatError("truncated __consumer_offsets record")
        b = self._data[self._pos : self._pos + n]
        self._pos += n
        return b

    def nullable_str(self) -> str | None:
        n = self.i16()
        return None if n < 0 else self.raw(n).decode()

    def str(self) -> str:
        s = self.nullable_str()
        if s is None:
            raise RecordFormatError("null string where Kafka requires one")
        return s

    def bytes(self) -> bytes:
        return self.raw(self.i32())


def decode_key(data: bytes) -> OffsetKey | GroupKey:
    """The key of a ``__consumer_offsets`` record."""
    r = _Reader(data)
    version = r.i16()
    if version in (0, 1):
        return OffsetKey(group_id=r.str(), topic=r.str(), partition=r.i32())
    if version == 2:
        return GroupKey(group_id=r.str())
    raise RecordFormatError(f"unknown __consumer_offsets key version {version}")


def decode_offset_value(data: bytes) -> OffsetValue:
    """An OffsetCommitValue of version 0-3."""
    r = _Reader(data)
    version = r.i16()
    if version not in (0, 1, 2, 3):
        raise RecordFormatError(f"unknown offset commit value version {version}")
    offset = r.i64()
    leader_epoch = r.i32() if version >= 3 else -1
    metadata = r.str()
    timestamp = r.i64()
    if version == 1:
        r.i64()  # expire timestamp: offset retention is not implemented
    return OffsetValue(
        offset=offset, leader_epoch=leader_epoch, metadata=metadata, commit_timestamp_ms=timestamp
    )


def decode_group_value(data: bytes) -> GroupValue:
    """A GroupMetadataValue of version 0-3."""
    r = _Reader(data)
    version = r.i16()
    if version not in (0, 1, 2, 3):
        raise RecordFormatError(f"unknown group metadata value version {version}")
    protocol_type = r.str()
    generation = r.i32()
    protocol = r.nullable_str()
    leader = r.nullable_str()
    timestamp = r.i64() if version >= 2 else -1
    members = []
    for _ in range(r.i32()):
        member_id = r.str()
        instance_id = r.nullable_str() if version >= 3 else None
        client_id = r.str()
        client_host = r.str()
        rebalance_timeout = r.i32() if version >= 1 else -1
        session_timeout = r.i32()
        if version == 0:
            rebalance_timeout = session_timeout
        members.append(
            MemberValue(
                member_id=member_id,
                group_instance_id=instance_id,
                client_id=client_id,
                client_host=client_host,
                rebalance_timeout_ms=rebalance_timeout,
                session_timeout_ms=session_timeout,
                subscription=r.bytes(),
                assignment=r.bytes(),
            )
        )
    return GroupValue(
        protocol_type=protocol_type,
        generation=generation,
        protocol=protocol,
        leader=leader,
        state_timestamp_ms=timestamp,
        members=tuple(members),
    )
