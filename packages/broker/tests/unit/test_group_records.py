"""The __consumer_offsets record format (Kafka's own bytes), its record batches, and the
group -> partition map."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rift_broker.group import (
    GroupKey,
    GroupValue,
    MemberValue,
    OffsetKey,
    OffsetsRecord,
    OffsetValue,
    RecordFormatError,
    SkippedRecords,
    decode_batches,
    decode_group_value,
    decode_key,
    decode_offset_value,
    encode_batch,
    encode_group,
    encode_offset,
    java_string_hash,
    partition_for,
)
from rift_broker.records import batch_crc, build_batch, iter_batches

# -- FindCoordinator: Java's String.hashCode, as Kafka uses it -------------------------


@pytest.mark.parametrize(
    ("s", "h"),
    [
        ("", 0),
        ("a", 97),
        ("abc", 96354),
        ("hello", 99162322),
        ("Aa", 2112),
        ("BB", 2112),
        ("Hello World", -862545276),
        ("polygenelubricants", -(2**31)),  # Integer.MIN_VALUE
    ],
)
def test_java_string_hash_vectors(s: str, h: int) -> None:
    assert java_string_hash(s) == h


def test_java_string_hash_counts_utf16_code_units() -> None:
    # U+1F600 is the surrogate pair D83D DE00 in Java: 31 * 0xD83D + 0xDE00.
    assert java_string_hash("\U0001f600") == 31 * 0xD83D + 0xDE00
    assert java_string_hash("é") == 0xE9


def test_partition_for_uses_kafka_abs() -> None:
    assert partition_for("hello", 50) == 99162322 % 50
    assert partition_for("Hello World", 50) == 862545276 % 50  # abs, not a mask
    assert partition_for("polygenelubricants", 7) == 0  # Utils.abs(MIN_VALUE) == 0
    with pytest.raises(ValueError, match="positive"):
        partition_for("g", 0)


@given(st.text(max_size=30), st.integers(min_value=1, max_value=200))
def test_partition_for_is_in_range(group: str, n: int) -> None:
    assert 0 <= partition_for(group, n) < n


# -- record bytes ------------------------------------------------------------------


def test_offset_commit_record_bytes() -> None:
    record = encode_offset(
        OffsetKey(group_id="g", topic="t", partition=3),
        OffsetValue(offset=42, leader_epoch=7, metadata="m", commit_timestamp_ms=1000),
    )
    assert record.key == b"\x00\x01" + b"\x00\x01g" + b"\x00\x01t" + b"\x00\x00\x00\x03"
    assert record.value == (
        b"\x00\x03" + struct.pack(">qi", 42, 7) + b"\x00\x01m" + struct.pack(">q", 1000)
    )
    assert decode_key(record.key) == OffsetKey(group_id="g", topic="t", partition=3)
    assert decode_offset_value(record.value) == OffsetValue(
        offset=42, leader_epoch=7, metadata="m", commit_timestamp_ms=1000
    )


def test_group_metadata_record_bytes() -> None:
    value = GroupValue(
        protocol_type="consumer",
        generation=2,
        protocol="range",
        leader="m1",
        state_timestamp_ms=5,
        members=(
            MemberValue(
                member_id="m1",
                client_id="c",
                client_host="/h",
                rebalance_timeout_ms=30,
                session_timeout_ms=10,
                subscription=b"S",
                assignment=b"AA",
            ),
        ),
    )
    record = encode_group(GroupKey(group_id="g"), value)
    assert record.key == b"\x00\x02\x00\x01g"
    expected = (
        b"\x00\x03"
        + b"\x00\x08consumer"
        + struct.pack(">i", 2)
        + b"\x00\x05range"
        + b"\x00\x02m1"
        + struct.pack(">qi", 5, 1)
        + b"\x00\x02m1"
        + b"\xff\xff"  # group_instance_id: null
        + b"\x00\x01c"
        + b"\x00\x02/h"
        + struct.pack(">ii", 30, 10)
        + struct.pack(">i", 1)
        + b"S"
        + struct.pack(">i", 2)
        + b"AA"
    )
    assert record.value == expected
    assert decode_key(record.key) == GroupKey(group_id="g")
    assert decode_group_value(expected) == value


def test_empty_group_value_has_null_protocol_and_leader() -> None:
    value = GroupValue(protocol_type="consumer", generation=9, protocol=None, leader=None)
    record = encode_group(GroupKey(group_id="g"), value)
    assert record.value is not None
    assert decode_group_value(record.value) == value


def test_tombstones() -> None:
    assert encode_offset(OffsetKey(group_id="g", topic="t", partition=0), None).value is None
    assert encode_group(GroupKey(group_id="g"), None).value is None


def test_older_value_versions_decode() -> None:
    v0 = b"\x00\x00" + struct.pack(">q", 5) + b"\x00\x00" + struct.pack(">q", 77)
    assert decode_offset_value(v0) == OffsetValue(offset=5, commit_timestamp_ms=77)
    v1 = b"\x00\x01" + struct.pack(">q", 6) + b"\x00\x01x" + struct.pack(">qq", 1, 2)
    assert decode_offset_value(v1) == OffsetValue(offset=6, metadata="x", commit_timestamp_ms=1)
    key_v0 = b"\x00\x00\x00\x01g\x00\x01t\x00\x00\x00\x01"
    assert decode_key(key_v0) == OffsetKey(group_id="g", topic="t", partition=1)
    group_v0 = (
        b"\x00\x00\x00\x08consumer"
        + struct.pack(">i", 3)
        + b"\x00\x05range\x00\x01m"
        + struct.pack(">i", 1)
        + b"\x00\x01m\x00\x01c\x00\x01h"
        + struct.pack(">i", 10)
        + struct.pack(">i", 0)
        + struct.pack(">i", 0)
    )
    decoded = decode_group_value(group_v0)
    assert decoded.generation == 3
    assert decoded.members[0].rebalance_timeout_ms == decoded.members[0].session_timeout_ms == 10


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00", b"\x00\x09\x00\x01g", b"\x00\x01\x00\x05g"],
)
def test_bad_keys_are_rejected(data: bytes) -> None:
    with pytest.raises(RecordFormatError):
        decode_key(data)


def test_bad_values_are_rejected() -> None:
    with pytest.raises(RecordFormatError, match="version"):
        decode_offset_value(b"\x00\x07")
    with pytest.raises(RecordFormatError, match="truncated"):
        decode_offset_value(b"\x00\x03\x00")
    with pytest.raises(RecordFormatError, match="version"):
        decode_group_value(b"\x00\x04")


_text = st.text(max_size=12)
_members = st.builds(
    MemberValue,
    member_id=_text,
    group_instance_id=st.none() | _text,
    client_id=_text,
    client_host=_text,
    rebalance_timeout_ms=st.integers(0, 2**31 - 1),
    session_timeout_ms=st.integers(0, 2**31 - 1),
    subscription=st.binary(max_size=20),
    assignment=st.binary(max_size=20),
)


@given(
    st.builds(
        GroupValue,
        protocol_type=_text,
        generation=st.integers(0, 2**31 - 1),
        protocol=st.none() | _text,
        leader=st.none() | _text,
        state_timestamp_ms=st.integers(-1, 2**62),
        members=st.lists(_members, max_size=3).map(tuple),
    ),
    _text,
)
def test_group_value_round_trips(value: GroupValue, group: str) -> None:
    record = encode_group(GroupKey(group_id=group), value)
    assert decode_key(record.key) == GroupKey(group_id=group)
    assert record.value is not None
    assert decode_group_value(record.value) == value


@given(
    st.builds(OffsetKey, group_id=_text, topic=_text, partition=st.integers(0, 2**31 - 1)),
    st.builds(
        OffsetValue,
        offset=st.integers(-1, 2**62),
        leader_epoch=st.integers(-1, 2**31 - 1),
        metadata=_text,
        commit_timestamp_ms=st.integers(-1, 2**62),
    ),
)
def test_offset_record_round_trips(key: OffsetKey, value: OffsetValue) -> None:
    record = encode_offset(key, value)
    assert decode_key(record.key) == key
    assert record.value is not None
    assert decode_offset_value(record.value) == value


# -- records in record batches -----------------------------------------------------------


@given(
    st.lists(
        st.builds(
            OffsetsRecord,
            key=st.binary(min_size=1, max_size=30),
            value=st.none() | st.binary(max_size=30),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_records_round_trip_through_one_uncompressed_batch(records: list[OffsetsRecord]) -> None:
    data = encode_batch(records, timestamp_ms=5)
    ((_, header),) = list(iter_batches(data))
    assert (header.record_count, header.producer_id, header.base_timestamp) == (len(records), -1, 5)
    assert list(decode_batches(data)) == records


def test_decoding_skips_control_batches_and_counts_what_it_cannot_use() -> None:
    record = OffsetsRecord(key=b"k", value=b"v")
    control = build_batch([b"\x00\x00\x00\x00"], keys=[b"\x00\x00\x00\x00"], control=True)
    keyless = build_batch([b"x"], keys=[None])
    compressed = bytearray(encode_batch([record], timestamp_ms=0))
    compressed[22] |= 1  # gzip codec bit (the CRC no longer matches: rewrite it)
    struct.pack_into(">I", compressed, 17, batch_crc(compressed, 0, len(compressed)))
    data = control + keyless + bytes(compressed) + encode_batch([record], timestamp_ms=0)
    skipped = SkippedRecords()
    assert list(decode_batches(data, skipped)) == [record]
    assert (skipped.compressed_batches, skipped.keyless_records) == (1, 1)
    with pytest.raises(ValueError, match="at least one"):
        encode_batch([], timestamp_ms=0)
