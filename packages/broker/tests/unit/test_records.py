"""RecordBatch v2 headers: parse, validate, stamp, iterate, build and decode."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rift_broker.records import (
    HEADER_SIZE,
    Compression,
    InvalidBatchError,
    build_batch,
    iter_batches,
    iter_records,
    parse_header,
    stamp_batch,
    validate_batch,
)


def test_header_fields_and_helpers() -> None:
    raw = build_batch(
        [b"a", None, b"ccc"],
        keys=[b"k", None, b""],
        timestamps=[100, 50, 170],
        producer_id=7,
        producer_epoch=2,
        base_sequence=10,
        transactional=True,
    )
    header = validate_batch(raw)
    assert header.size == len(raw)
    assert header.magic == 2
    assert (header.base_timestamp, header.max_timestamp) == (100, 170)
    assert (header.record_count, header.last_offset_delta, header.last_offset) == (3, 2, 2)
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (7, 2, 10)
    assert header.last_sequence == 12
    assert header.is_transactional
    assert not header.is_control
    assert header.compression is Compression.NONE
    assert validate_batch(build_batch([b"x"], control=True)).is_control


@given(
    values=st.lists(st.one_of(st.none(), st.binary(max_size=300)), min_size=1, max_size=20),
    base_ts=st.integers(0, 2**40),
)
def test_build_and_decode_round_trip(values: list[bytes | None], base_ts: int) -> None:
    timestamps = [base_ts + i * 3 for i in range(len(values))]
    raw = build_batch(values, timestamps=timestamps, base_offset=5)
    records = list(iter_records(raw))
    assert [r.value for r in records] == values
    assert [r.offset for r in records] == list(range(5, 5 + len(values)))
    assert [r.timestamp for r in records] == timestamps


def test_stamping_keeps_the_crc_valid() -> None:
    buf = bytearray(build_batch([b"v"] * 4))
    stamp_batch(buf, base_offset=1234, partition_leader_epoch=9)
    header = validate_batch(buf)
    assert (header.base_offset, header.partition_leader_epoch, header.last_offset) == (
        1234,
        9,
        1237,
    )


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda b: b[:30], "shorter than the 61-byte header"),
        (lambda b: b[:-1], "only"),
        (lambda b: b[:16] + b"\x00" + b[17:], "magic 0"),
        (lambda b: b[:8] + struct.pack(">i", 10) + b[12:], "batchLength 10"),
        (lambda b: b[:40] + bytes([b[40] ^ 4]) + b[41:], "CRC-32C mismatch"),
    ],
)
def test_invalid_batches_say_why(mangle, reason) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidBatchError, match=reason):
        validate_batch(mangle(build_batch([b"payload"] * 2)))


def test_iter_batches_walks_boundaries_and_stops_at_a_bad_one() -> None:
    batches = [build_batch([b"x" * n] * (n + 1), base_offset=i) for i, n in enumerate((0, 5, 50))]
    buffer = b"".join(batches)
    positions = [p for p, _ in iter_batches(buffer)]
    assert positions == [0, len(batches[0]), len(batches[0]) + len(batches[1])]
    seen = []
    walk = iter_batches(buffer + batches[0][: HEADER_SIZE + 2])
    seen = [next(walk)[0] for _ in positions]
    with pytest.raises(InvalidBatchError) as caught:
        next(walk)
    assert seen == positions
    assert caught.value.position == len(buffer)
    assert parse_header(buffer, positions[2]).base_offset == 2


def test_build_batch_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least one record"):
        build_batch([])
    with pytest.raises(ValueError, match="keys"):
        build_batch([b"a"], keys=[b"a", b"b"])
