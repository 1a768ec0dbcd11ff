"""RecordBatch v2 round trips, checked against two independent decoders."""

from __future__ import annotations

import struct

import pytest
from crc32c import crc32c
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from kio.records.readers import read_batch

from rift_client.compression import Compression, available
from rift_client.errors import ProtocolError
from rift_client.records import HEADER_SIZE, Record, decode_batches, encode_batch

CODECS = sorted(available())

headers_st = st.lists(
    st.tuples(st.text(max_size=8), st.one_of(st.none(), st.binary(max_size=8))), max_size=3
).map(tuple)
record_st = st.builds(
    Record,
    key=st.one_of(st.none(), st.binary(max_size=16)),
    value=st.one_of(st.none(), st.binary(max_size=64)),
    headers=headers_st,
    timestamp_ms=st.integers(min_value=0, max_value=2**41),
)


def _strip(record: Record, offset: int) -> Record:
    return Record(
        key=record.key,
        value=record.value,
        headers=record.headers,
        timestamp_ms=record.timestamp_ms,
        offset=offset,
    )


@settings(max_examples=60, deadline=None)
@given(
    records=st.lists(record_st, min_size=1, max_size=8),
    codec=st.sampled_from(CODECS),
    base_offset=st.integers(min_value=0, max_value=2**40),
)
def test_round_trip(records: list[Record], codec: Compression, base_offset: int) -> None:
    data = encode_batch(records, base_offset=base_offset, compression=codec)
    (batch,) = decode_batches(data)
    assert batch.compression is codec
    assert batch.base_offset == base_offset
    assert batch.last_offset == base_offset + len(records) - 1
    assert batch.records == tuple(_strip(r, base_offset + i) for i, r in enumerate(records))


@settings(max_examples=40, deadline=None)
@given(records=st.lists(record_st, min_size=1, max_size=8), codec=st.sampled_from(CODECS))
def test_kafka_python_reads_our_batches(records: list[Record], codec: Compression) -> None:
    data = encode_batch(
        records, base_offset=5, producer_id=9, producer_epoch=1, base_sequence=3, compression=codec
    )
    batch = DefaultRecordBatch(bytearray(data))
    assert batch.validate_crc()
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (9, 1, 3)
    assert batch.compression_type == int(codec)
    got = [(r.offset, r.timestamp, r.key, r.value, [tuple(h) for h in r.headers]) for r in batch]
    assert got == [
        (5 + i, r.timestamp_ms, r.key, r.value, [tuple(h) for h in r.headers])
        for i, r in enumerate(records)
    ]


def test_kio_reads_our_uncompressed_batch() -> None:
    records = [
        Record(key=b"k", value=b"v", headers=(("h", b"1"),), timestamp_ms=1_700_000_000_000),
        Record(key=None, value=b"w", timestamp_ms=1_700_000_000_000),
    ]
    data = encode_batch(records, base_offset=10, producer_id=4, producer_epoch=0, base_sequence=0)
    batch, size = read_batch(data, 0)
    assert size == len(data)
    assert [(r.offset, r.key, r.value) for r in batch.records] == [
        (10, b"k", b"v"),
        (11, None, b"w"),
    ]
    assert batch.records[0].headers[0].key == b"h"


@pytest.mark.parametrize("codec", CODECS)
def test_we_read_kafka_python_batches(codec: Compression) -> None:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=int(codec),
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    for i in range(20):
        builder.append(i, timestamp=1000 + i, key=b"k%d" % i, value=b"v" * i, headers=[("a", b"b")])
    (batch,) = decode_batches(bytes(builder.build()))
    assert [r.value for r in batch.records] == [b"v" * i for i in range(20)]
    assert batch.records[3].headers == (("a", b"b"),)
    assert batch.records[19].timestamp_ms == 1019


def test_header_layout_and_crc() -> None:
    data = encode_batch([Record(value=b"x", timestamp_ms=5)], producer_id=7, base_sequence=11)
    base_offset, length, epoch, magic, crc = struct.unpack_from(">qiibI", data)
    assert (base_offset, length + 12, epoch, magic) == (0, len(data), -1, 2)
    assert crc == crc32c(data[21:])
    assert struct.unpack_from(">qhi", data, 43) == (7, -1, 11)
    assert struct.unpack_from(">i", data, 57) == (1,)
    assert len(data) > HEADER_SIZE


def test_truncated_trailing_batch_is_ignored() -> None:
    one = encode_batch([Record(value=b"a", timestamp_ms=1)], base_offset=0)
    two = encode_batch([Record(value=b"b", timestamp_ms=1)], base_offset=1)
    batches = list(decode_batches(one + two[:-3]))
    assert [b.base_offset for b in batches] == [0]


def test_corrupt_batch_is_rejected() -> None:
    data = bytearray(encode_batch([Record(value=b"abc", timestamp_ms=1)]))
    data[-2] ^= 0xFF  # a byte of the value
    with pytest.raises(ProtocolError, match="CRC"):
        list(decode_batches(bytes(data)))
    # ... unless the caller skips the check
    (batch,) = decode_batches(bytes(data), check_crc=False)
    assert batch.records[0].value != b"abc"
    data[-1] = 0xFF  # the header count now runs off the end
    with pytest.raises(ProtocolError, match="malformed"):
        list(decode_batches(bytes(data), check_crc=False))


def test_control_and_transactional_flags() -> None:
    data = bytearray(encode_batch([Record(value=b"x", timestamp_ms=1)], transactional=True))
    (batch,) = decode_batches(bytes(data))
    assert batch.is_transactional
    assert not batch.is_control
    struct.pack_into(">h", data, 21, 0x30)
    struct.pack_into(">I", data, 17, crc32c(bytes(data[21:])))
    (batch,) = decode_batches(bytes(data))
    assert batch.is_control


def test_empty_batch_rejected() -> None:
    with pytest.raises(ValueError, match="at least one"):
        encode_batch([])


def test_old_message_format_rejected() -> None:
    data = bytearray(encode_batch([Record(value=b"x", timestamp_ms=1)]))
    data[16] = 1
    with pytest.raises(ProtocolError, match="v1"):
        list(decode_batches(bytes(data)))
