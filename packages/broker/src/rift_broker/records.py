"""Kafka RecordBatch v2 as the broker sees it: a 61-byte header and opaque records.

Layout (big-endian)::

    0  baseOffset int64           27 baseTimestamp int64     53 baseSequence int32
    8  batchLength int32          35 maxTimestamp int64      57 recordCount int32
    12 partitionLeaderEpoch int32 43 producerId int64        61 records ...
    16 magic int8 (= 2)           51 producerEpoch int16
    17 crc uint32                 (CRC-32C of bytes 21..end)
    21 attributes int16           (bits 0-2 codec, 3 log-append-time, 4 transactional,
    23 lastOffsetDelta int32       5 control)

``batchLength`` counts the bytes after itself, so a batch occupies
``batchLength + 12`` bytes. The broker stamps ``baseOffset`` and
``partitionLeaderEpoch`` in place; both lie before byte 21, outside the CRC, so
stamping never invalidates a batch. Nothing here looks inside the records on the
hot path: :func:`validate_batch` and :func:`iter_batches` read headers and CRCs only.

:func:`build_batch` encodes uncompressed batches (Kafka's varint record format) for
tests, the simulator and benchmarks; :func:`iter_records` decodes them back.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum

from crc32c import crc32c

from rift_broker.errors import BrokerError

__all__ = [
    "HEADER_SIZE",
    "LOG_OVERHEAD",
    "MAGIC",
    "CRC_START",
    "NO_TIMESTAMP",
    "Compression",
    "BatchHeader",
    "InvalidBatchError",
    "parse_header",
    "batch_crc",
    "validate_batch",
    "stamp_batch",
    "iter_batches",
    "build_batch",
    "Record",
    "iter_records",
]

HEADER_SIZE = 61
MAGIC = 2
CRC_START = 21
NO_TIMESTAMP = -1
# Bytes before batchLength's payload: baseOffset (8) + batchLength (4).
LOG_OVERHEAD = 12
_HEADER = struct.Struct(">qiibIhiqqqhii")
_BASE_OFFSET = struct.Struct(">q")
_EPOCH = struct.Struct(">i")
_CRC = struct.Struct(">I")
_COMPRESSION_MASK = 0x07
_TIMESTAMP_TYPE = 0x08
_TRANSACTIONAL = 0x10
_CONTROL = 0x20


class Compression(IntEnum):
    NONE = 0
    GZIP = 1
    SNAPPY = 2
    LZ4 = 3
    ZSTD = 4


class InvalidBatchError(BrokerError, ValueError):
    """Bytes that are not a valid RecordBatch v2; ``position`` is where it starts."""

    def __init__(self, reason: str, *, position: int = 0):
        super().__init__(f"invalid record batch at byte {position}: {reason}")
        self.reason = reason
        self.position = position


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchHeader:
    """The 61-byte header of one batch, decoded."""

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    record_count: int

    @property
    def size(self) -> int:
        """Bytes the whole batch occupies, header included."""
        return self.batch_length + LOG_OVERHEAD

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    @property
    def compression(self) -> Compression:
        return Compression(self.attributes & _COMPRESSION_MASK)

    @property
    def is_log_append_time(self) -> bool:
        return bool(self.attributes & _TIMESTAMP_TYPE)

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & _TRANSACTIONAL)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & _CONTROL)

    def stamped(self, *, base_offset: int, partition_leader_epoch: int) -> BatchHeader:
        """This header as :func:`stamp_batch` leaves it."""
        return BatchHeader(
            base_offset=base_offset,
            batch_length=self.batch_length,
            partition_leader_epoch=partition_leader_epoch,
            magic=self.magic,
            crc=self.crc,
            attributes=self.attributes,
            last_offset_delta=self.last_offset_delta,
            base_timestamp=self.base_timestamp,
            max_timestamp=self.max_timestamp,
            producer_id=self.producer_id,
            producer_epoch=self.producer_epoch,
            base_sequence=self.base_sequence,
            record_count=self.record_count,
        )

    @property
    def last_sequence(self) -> int:
        """Sequence of the last record (wraps like Kafka's), or -1 without a producer id."""
        if self.base_sequence < 0:
            return -1
        return (self.base_sequence + self.last_offset_delta) % (1 << 31)


Buffer = bytes | bytearray | memoryview


def parse_header(buf: Buffer, position: int = 0) -> BatchHeader:
    """Decode the header at ``position``; checks size, magic and length, not the CRC."""
    if len(buf) - position < HEADER_SIZE:
        raise InvalidBatchError(
            f"{len(buf) - position} bytes, shorter than the {HEADER_SIZE}-byte header",
            position=position,
        )
    fields = _HEADER.unpack_from(buf, position)
    header = BatchHeader(
        base_offset=fields[0],
        batch_length=fields[1],
        partition_leader_epoch=fields[2],
        magic=fields[3],
        crc=fields[4],
        attributes=fields[5],
        last_offset_delta=fields[6],
        base_timestamp=fields[7],
        max_timestamp=fields[8],
        producer_id=fields[9],
        producer_epoch=fields[10],
        base_sequence=fields[11],
        record_count=fields[12],
    )
    if header.magic != MAGIC:
        raise InvalidBatchError(f"magic {header.magic}, only 2 is supported", position=position)
    if header.size < HEADER_SIZE:
        raise InvalidBatchError(
            f"batchLength {header.batch_length} is too small", position=position
        )
    if header.last_offset_delta < 0 or header.record_count < 0:
        raise InvalidBatchError(
            f"negative lastOffsetDelta {header.last_offset_delta} "
            f"or recordCount {header.record_count}",
            position=position,
        )
    return header


def batch_crc(buf: Buffer, position: int, size: int) -> int:
    """CRC-32C of the batch of ``size`` bytes at ``position`` (bytes 21..end)."""
    view = memoryview(buf)[position + CRC_START : position + size]
    return int(crc32c(view))


def validate_batch(buf: Buffer, position: int = 0) -> BatchHeader:
    """Parse the header at ``position`` and check the batch is complete and its CRC holds."""
    header = parse_header(buf, position)
    if len(buf) - position < header.size:
        raise InvalidBatchError(
            f"batch of {header.size} bytes but only {len(buf) - position} present",
            position=position,
        )
    actual = batch_crc(buf, position, header.size)
    if actual != header.crc:
        raise InvalidBatchError(
            f"CRC-32C mismatch: header says {header.crc:#010x}, bytes give {actual:#010x}",
            position=position,
        )
    return header


def stamp_batch(
    buf: bytearray | memoryview, *, base_offset: int, partition_leader_epoch: int, position: int = 0
) -> None:
    """Write base offset and partition leader epoch in place (outside the CRC)."""
    _BASE_OFFSET.pack_into(buf, position, base_offset)
    _EPOCH.pack_into(buf, position + 12, partition_leader_epoch)


def iter_batches(
    buf: Buffer, *, start: int = 0, validate: bool = True
) -> Iterator[tuple[int, BatchHeader]]:
    """Yield ``(position, header)`` for each batch in ``buf`` from ``start``.

    Raises :class:`InvalidBatchError` at the first bad or incomplete batch (after
    yielding every good one before it); with ``validate=False`` the CRC is not
    checked, only the header and that the batch is complete.
    """
    position = start
    end = len(buf)
    while position < end:
        if validate:
            header = validate_batch(buf, position)
        else:
            header = parse_header(buf, position)
            if end - position < header.size:
                raise InvalidBatchError("incomplete batch", position=position)
        yield position, header
        position += header.size


# -- Building and decoding uncompressed batches (tests, simulator, benchmarks) --


def _zigzag_varint(value: int, out: bytearray) -> None:
    encoded = (value << 1) ^ (value >> 63)
    while True:
        byte = encoded & 0x7F
        encoded >>= 7
        if encoded:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return


def _read_varint(buf: Buffer, position: int) -> tuple[int, int]:
    shift = 0
    encoded = 0
    while True:
        byte = buf[position]
        position += 1
        encoded |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (encoded >> 1) ^ -(encoded & 1), position
        shift += 7
        if shift > 63:
            raise InvalidBatchError("varint longer than 10 bytes", position=position)


def _encode_record(
    out: bytearray,
    *,
    offset_delta: int,
    timestamp_delta: int,
    key: bytes | None,
    value: bytes | None,
) -> None:
    body = bytearray(b"\x00")  # record attributes: unused, always 0
    _zigzag_varint(timestamp_delta, body)
    _zigzag_varint(offset_delta, body)
    for field in (key, value):
        if field is None:
            _zigzag_varint(-1, body)
        else:
            _zigzag_varint(len(field), body)
            body += field
    _zigzag_varint(0, body)  # no headers
    _zigzag_varint(len(body), out)
    out += body


def build_batch(
    values: Sequence[bytes | None],
    *,
    keys: Sequence[bytes | None] | None = None,
    base_offset: int = 0,
    base_timestamp: int = 0,
    timestamps: Sequence[int] | None = None,
    partition_leader_epoch: int = -1,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    transactional: bool = False,
    control: bool = False,
) -> bytes:
    """Encode an uncompressed RecordBatch v2 with one record per value and a valid CRC.

    ``timestamps`` are absolute per-record timestamps (default: all
    ``base_timestamp``); the batch's base and max timestamps derive from them.
    """
    if not values:
        raise ValueError("a batch needs at least one record")
    if keys is not None and len(keys) != len(values):
        raise ValueError(f"{len(keys)} keys for {len(values)} values")
    if timestamps is not None and len(timestamps) != len(values):
        raise ValueError(f"{len(timestamps)} timestamps for {len(values)} values")
    stamps = list(timestamps) if timestamps is not None else [base_timestamp] * len(values)
    first_ts = stamps[0]
    records = bytearray()
    for index, value in enumerate(values):
        _encode_record(
            records,
            offset_delta=index,
            timestamp_delta=stamps[index] - first_ts,
            key=keys[index] if keys is not None else None,
            value=value,
        )
    attributes = (_TRANSACTIONAL if transactional else 0) | (_CONTROL if control else 0)
    size = HEADER_SIZE + len(records)
    buf = bytearray(size)
    _HEADER.pack_into(
        buf,
        0,
        base_offset,
        size - LOG_OVERHEAD,
        partition_leader_epoch,
        MAGIC,
        0,
        attributes,
        len(values) - 1,
        first_ts,
        max(stamps),
        producer_id,
        producer_epoch,
        base_sequence,
        len(values),
    )
    buf[HEADER_SIZE:] = records
    _CRC.pack_into(buf, 17, batch_crc(buf, 0, size))
    return bytes(buf)


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None


def iter_records(buf: Buffer, position: int = 0) -> Iterator[Record]:
    """Decode the records of the uncompressed batch at ``position`` (not for the hot path)."""
    header = validate_batch(buf, position)
    if header.compression is not Compression.NONE:
        raise InvalidBatchError(f"{header.compression.name} batches are not decoded here")
    cursor = position + HEADER_SIZE
    for _ in range(header.record_count):
        _length, cursor = _read_varint(buf, cursor)
        cursor += 1  # record attributes
        ts_delta, cursor = _read_varint(buf, cursor)
        offset_delta, cursor = _read_varint(buf, cursor)
        fields: list[bytes | None] = []
        for _field in range(2):
            size, cursor = _read_varint(buf, cursor)
            if size < 0:
                fields.append(None)
            else:
                fields.append(bytes(buf[cursor : cursor + size]))
                cursor += size
        header_count, cursor = _read_varint(buf, cursor)
        for _header in range(header_count):
            for _part in range(2):
                size, cursor = _read_varint(buf, cursor)
                cursor += max(size, 0)
        yield Record(
            offset=header.base_offset + offset_delta,
            timestamp=header.base_timestamp + ts_delta,
            key=fields[0],
            value=fields[1],
        )
