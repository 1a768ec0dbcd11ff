"""``__consumer_offsets`` records to and from Kafka record batches (sans-IO).

The coordinator's :class:`~rift_broker.group.Append` becomes one uncompressed
RecordBatch v2 without a producer id (so the partition's producer-state dedup
leaves it alone); reading a partition back turns its batches into records in log
order. Control batches carry no offsets and keyless records mean nothing to the
coordinator (Kafka's own loader ignores both). A coordinator never writes a
compressed batch, so :func:`decode_batches` skips one and counts it rather than
guess how it got there.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from rift_broker.group._records import OffsetsRecord
from rift_broker.records import (
    BatchHeader,
    Buffer,
    Compression,
    build_batch,
    iter_batches,
    iter_records,
)

__all__ = ["encode_batch", "decode_batches", "decode_batch", "SkippedRecords"]


def encode_batch(records: Sequence[OffsetsRecord], *, timestamp_ms: int) -> bytes:
    """One uncompressed batch holding ``records`` in order (offsets are stamped on append)."""
    if not records:
        raise ValueError("an append needs at least one record")
    return build_batch(
        [r.value for r in records], keys=[r.key for r in records], base_timestamp=timestamp_ms
    )


@dataclass(slots=True)
class SkippedRecords:
    """What :func:`decode_batches` left out: worth a log line when not zero."""

    compressed_batches: int = 0
    keyless_records: int = 0


def decode_batches(data: Buffer, skipped: SkippedRecords | None = None) -> Iterator[OffsetsRecord]:
    """The records of the whole batches in ``data``, in log order.

    Raises :class:`~rift_broker.records.InvalidBatchError` at a batch that does not
    validate (after yielding the records before it).
    """
    skipped = skipped if skipped is not None else SkippedRecords()
    for position, header in iter_batches(data):
        yield from decode_batch(data, position, header, skipped)


def decode_batch(
    data: Buffer, position: int, header: BatchHeader, skipped: SkippedRecords
) -> Iterator[OffsetsRecord]:
    """The records of the one batch at ``position`` of ``data`` (its ``header`` already
    read and validated by :func:`~rift_broker.records.iter_batches`)."""
    if header.is_control:
        return
    if header.compression is not Compression.NONE:
        skipped.compressed_batches += 1
        return
    for record in iter_records(data, position):
        if record.key is None:
            skipped.keyless_records += 1
            continue
        yield OffsetsRecord(key=record.key, value=record.value)
