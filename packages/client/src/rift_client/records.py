"""Kafka RecordBatch v2: build batches for Produce, parse them out of Fetch.

Layout (all big-endian; the broker stamps base offset and partition leader epoch,
which sit outside the CRC)::

    0  baseOffset int64         27 baseTimestamp int64     53 baseSequence int32
    8  batchLength int32        35 maxTimestamp int64      57 recordCount int32
    12 partitionLeaderEpoch     43 producerId int64        61 records...
    16 magic int8 (=2)          51 producerEpoch int16
    17 crc uint32 (CRC-32C of bytes 21..end)
    21 attributes int16 (bits 0-2 codec, 3 log-append-time, 4 transactional, 5 control)
    23 lastOffsetDelta int32

Each record is a varint-length-prefixed body: attributes int8, timestampDelta
varlong, offsetDelta varint, key, value (varint length, -1 = null), header count
and headers (key string, value bytes).

Why not ``kio.records``: it has no compression, and its reader rounds timestamps
to whole seconds. We reuse kio's varint readers and writer (the writer through a
lookup table of small values, since record encoding is the producer's hot path).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from crc32c import crc32c
from kio.serial.errors import BufferUnderflow
from kio.serial.readers import read_signed_varint, read_signed_varlong
from kio.serial.writers import write_signed_varlong

from rift_client.compression import Compression, compress, decompress
from rift_client.errors import ProtocolError

__all__ = [
    "Header",
    "Record",
    "RecordBatch",
    "HEADER_SIZE",
    "encode_batch",
    "decode_batches",
    "estimate_size",
]

Header = tuple[str, bytes | None]

HEADER_SIZE = 61
_HEADER = struct.Struct(">qiibIhiqqqhii")
_CRC_START = 21
_COMPRESSION_MASK = 0x07
_TRANSACTIONAL = 0x10
_CONTROL = 0x20


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    """One record. ``offset`` is -1 until the broker has assigned one."""

    key: bytes | None = None
    value: bytes | None = None
    headers: tuple[Header, ...] = ()
    timestamp_ms: int = -1
    offset: int = -1


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordBatch:
    base_offset: int
    partition_leader_epoch: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records: tuple[Record, ...]

    @property
    def compression(self) -> Compression:
        return Compression(self.attributes & _COMPRESSION_MASK)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & _CONTROL)

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & _TRANSACTIONAL)

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta


def estimate_size(record: Record) -> int:
    """Upper bound of a record's encoded size (varints at their widest)."""
    size = 21 + len(record.key or b"") + len(record.value or b"")
    for key, value in record.headers:
        size += 10 + len(key.encode()) + len(value or b"")
    return size


def _kio_varlong(value: int) -> bytes:
    out = io.BytesIO()
    write_signed_varlong(out, value)
    return out.getvalue()


# The hot path encodes many small varints (lengths, deltas): look them up in a
# table that kio's own writer filled, and fall back to kio for the rest.
_SMALL = 1 << 14
_VARINTS = [_kio_varlong(v) for v in range(-_SMALL, _SMALL)]


def _varint(value: int) -> bytes:
    if -_SMALL <= value < _SMALL:
        return _VARINTS[value + _SMALL]
    return _kio_varlong(value)


def _sized(value: bytes | None) -> bytes:
    if value is None:
        return _VARINTS[_SMALL - 1]
    return _varint(len(value)) + value


def _encode_records(records: Sequence[Record], base_timestamp: int) -> bytes:
    parts: list[bytes] = []
    for delta, record in enumerate(records):
        body = [
            b"\x00",  # record attributes: unused
            _varint(record.timestamp_ms - base_timestamp),
            _varint(delta),
            _sized(record.key),
            _sized(record.value),
            _varint(len(record.headers)),
        ]
        for hkey, hvalue in record.headers:
            body.append(_sized(hkey.encode()))
            body.append(_sized(hvalue))
        encoded = b"".join(body)
        parts.append(_varint(len(encoded)))
        parts.append(encoded)
    return b"".join(parts)


def encode_batch(
    records: Sequence[Record],
    *,
    base_offset: int = 0,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    partition_leader_epoch: int = -1,
    compression: Compression = Compression.NONE,
    transactional: bool = False,
) -> bytes:
    """One RecordBatch v2 holding ``records`` with offset deltas 0..n-1."""
    if not records:
        raise ValueError("a record batch needs at least one record")
    timestamps = [r.timestamp_ms for r in records]
    base_timestamp, max_timestamp = timestamps[0], max(timestamps)
    payload = compress(compression, _encode_records(records, base_timestamp))
    attributes = int(compression) | (_TRANSACTIONAL if transactional else 0)
    header = bytearray(
        _HEADER.pack(
            base_offset,
            HEADER_SIZE - 12 + len(payload),
            partition_leader_epoch,
            2,
            0,
            attributes,
            len(records) - 1,
            base_timestamp,
            max_timestamp,
            producer_id,
            producer_epoch,
            base_sequence,
            len(records),
        )
    )
    crc = crc32c(payload, crc32c(bytes(header[_CRC_START:])))
    struct.pack_into(">I", header, 17, crc)
    return bytes(header) + payload


def _read_bytes(buf: bytes, pos: int) -> tuple[bytes | None, int]:
    length, size = read_signed_varint(buf, pos)
    pos += size
    if length < 0:
        return None, pos
    return buf[pos : pos + length], pos + length


def _decode_records(
    buf: bytes, count: int, base_offset: int, base_timestamp: int
) -> tuple[Record, ...]:
    records = []
    pos = 0
    for _ in range(count):
        length, size = read_signed_varint(buf, pos)
        pos += size
        end = pos + length
        pos += 1  # attributes
        ts_delta, size = read_signed_varlong(buf, pos)
        pos += size
        offset_delta, size = read_signed_varint(buf, pos)
        pos += size
        key, pos = _read_bytes(buf, pos)
        value, pos = _read_bytes(buf, pos)
        nheaders, size = read_signed_varint(buf, pos)
        pos += size
        headers = []
        for _ in range(nheaders):
            hkey, pos = _read_bytes(buf, pos)
            hvalue, pos = _read_bytes(buf, pos)
            headers.append(((hkey or b"").decode(), hvalue))
        if pos != end:
            raise ProtocolError("record length does not match its contents")
        records.append(
            Record(
                key=key,
                value=value,
                headers=tuple(headers),
                timestamp_ms=base_timestamp + ts_delta,
                offset=base_offset + offset_delta,
            )
        )
    return tuple(records)


def decode_batches(data: bytes, *, check_crc: bool = True) -> Iterator[RecordBatch]:
    """Every complete batch in ``data``; a truncated trailing batch is ignored
    (a fetch response may cut the last batch short)."""
    view = bytes(data)
    pos = 0
    while pos + HEADER_SIZE <= len(view):
        (
            base_offset,
            batch_length,
            leader_epoch,
            magic,
            crc,
            attributes,
            last_delta,
            base_ts,
            max_ts,
            producer_id,
            producer_epoch,
            base_sequence,
            count,
        ) = _HEADER.unpack_from(view, pos)
        end = pos + 12 + batch_length
        if end > len(view):
            return
        if magic != 2:
            raise ProtocolError(f"message format v{magic} is not supported (only v2)")
        if check_crc and crc32c(view[pos + _CRC_START : end]) != crc:
            raise ProtocolError(f"CRC mismatch in the batch at offset {base_offset}")
        codec = Compression(attributes & _COMPRESSION_MASK)
        payload = decompress(codec, view[pos + HEADER_SIZE : end])
        try:
            records = _decode_records(payload, count, base_offset, base_ts)
        except (BufferUnderflow, IndexError, ValueError) as exc:
            raise ProtocolError(f"malformed records in batch at offset {base_offset}") from exc
        yield RecordBatch(
            base_offset=base_offset,
            partition_leader_epoch=leader_epoch,
            attributes=attributes,
            last_offset_delta=last_delta,
            base_timestamp=base_ts,
            max_timestamp=max_ts,
            producer_id=producer_id,
            producer_epoch=producer_epoch,
            base_sequence=base_sequence,
            records=records,
        )
        pos = end
