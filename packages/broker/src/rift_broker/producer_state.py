"""Idempotent-producer state of one partition: sans-IO sequence checks and dedup.

Theory of operation
-------------------
An idempotent producer stamps each RecordBatch with (producer id, producer epoch,
base sequence); the batch covers sequences ``base .. base + last_offset_delta``
(wrapping at 2**31 - 1 like Kafka's ``DefaultRecordBatch.incrementSequence``). Per
producer id a partition remembers the current epoch and the last
:data:`MAX_BATCHES` appended batches: their sequence ranges and the offsets they got.

For an incoming batch, :meth:`ProducerStateTable.check` decides, in this order:

=====================================================  ===========================
situation                                              verdict
=====================================================  ===========================
no producer id (-1)                                    ``APPEND``
epoch older than the producer's current epoch          INVALID_PRODUCER_EPOCH
same epoch, same sequence range as a remembered batch  ``Duplicate(base, last)``
unknown producer (no state: new, or expired)           ``APPEND`` (any sequence)
newer epoch, base sequence 0                           ``APPEND``
newer epoch, base sequence not 0                       OUT_OF_ORDER_SEQUENCE_NUMBER
same epoch, base == last sequence + 1 (wrapping)       ``APPEND``
same epoch, anything else                              OUT_OF_ORDER_SEQUENCE_NUMBER
=====================================================  ===========================

Accepting any sequence from an unknown producer is what Kafka does since 2.5 (the
state may have been lost to retention); the producer's first write after
InitProducerId has sequence 0 anyway. A duplicate is answered with success and the
*original* offsets, so a retried batch is appended once. After the log assigned
offsets, the driver calls :meth:`ProducerStateTable.record` without yielding in
between (check and record must not interleave with another append of the same
partition). At startup :meth:`ProducerStateTable.record` is replayed over the
headers of the log's batches; no record is ever decoded.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from rift_broker.errors import InvalidProducerEpoch, OutOfOrderSequence
from rift_broker.records import BatchHeader

__all__ = [
    "MAX_BATCHES",
    "NO_PRODUCER_ID",
    "APPEND",
    "Append",
    "Duplicate",
    "BatchRange",
    "ProducerStateTable",
    "last_sequence",
]

MAX_BATCHES: Final = 5
NO_PRODUCER_ID: Final = -1
_MAX_SEQUENCE: Final = 2**31 - 1


def last_sequence(base_sequence: int, last_offset_delta: int) -> int:
    """The sequence of a batch's last record, wrapping like Kafka does."""
    if base_sequence > _MAX_SEQUENCE - last_offset_delta:
        return last_offset_delta - (_MAX_SEQUENCE - base_sequence) - 1
    return base_sequence + last_offset_delta


def _in_sequence(last_seq: int, next_seq: int) -> bool:
    return next_seq == last_seq + 1 or (next_seq == 0 and last_seq == _MAX_SEQUENCE)


@dataclass(frozen=True, slots=True, kw_only=True)
class Append:
    """Verdict: append the batch."""


APPEND: Final = Append()


@dataclass(frozen=True, slots=True, kw_only=True)
class Duplicate:
    """Verdict: the batch was appended before, at these offsets; don't append it again."""

    base_offset: int
    last_offset: int


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchRange:
    """One remembered batch: its sequence range and where it landed."""

    first_sequence: int
    last_sequence: int
    base_offset: int
    last_offset: int


@dataclass(slots=True)
class _Producer:
    epoch: int
    batches: deque[BatchRange]


class ProducerStateTable:
    """Per producer id of one partition: the epoch and the last five batches."""

    __slots__ = ("_producers",)

    def __init__(self) -> None:
        self._producers: dict[int, _Producer] = {}

    def __len__(self) -> int:
        return len(self._producers)

    def epoch(self, producer_id: int) -> int | None:
        entry = self._producers.get(producer_id)
        return None if entry is None else entry.epoch

    def batches(self, producer_id: int) -> tuple[BatchRange, ...]:
        entry = self._producers.get(producer_id)
        return () if entry is None else tuple(entry.batches)

    def check(
        self, *, producer_id: int, epoch: int, base_sequence: int, last_offset_delta: int
    ) -> Append | Duplicate:
        """Decide what to do with a batch; raise the Kafka error that rejects it."""
        if producer_id == NO_PRODUCER_ID:
            return APPEND
        entry = self._producers.get(producer_id)
        if entry is None:
            return APPEND
        if epoch < entry.epoch:
            raise InvalidProducerEpoch(
                f"producer {producer_id} epoch {epoch} is older than {entry.epoch}"
            )
        last_seq = last_sequence(base_sequence, last_offset_delta)
        if epoch == entry.epoch:
            for batch in entry.batches:
                if batch.first_sequence == base_sequence and batch.last_sequence == last_seq:
                    return Duplicate(base_offset=batch.base_offset, last_offset=batch.last_offset)
        if epoch > entry.epoch:
            if base_sequence != 0:
                raise OutOfOrderSequence(
                    f"producer {producer_id} new epoch {epoch} starts at sequence"
                    f" {base_sequence}, not 0"
                )
            return APPEND
        if not entry.batches or _in_sequence(entry.batches[-1].last_sequence, base_sequence):
            return APPEND
        raise OutOfOrderSequence(
            f"producer {producer_id} sent sequence {base_sequence} after"
            f" {entry.batches[-1].last_sequence}"
        )

    def record(
        self,
        *,
        producer_id: int,
        epoch: int,
        base_sequence: int,
        last_offset_delta: int,
        base_offset: int,
        last_offset: int,
    ) -> None:
        """Remember an appended batch (after :meth:`check`, or when replaying the log)."""
        if producer_id == NO_PRODUCER_ID:
            return
        entry = self._producers.get(producer_id)
        if entry is None or epoch > entry.epoch:
            entry = _Producer(epoch=epoch, batches=deque(maxlen=MAX_BATCHES))
            self._producers[producer_id] = entry
        elif epoch < entry.epoch:  # only when replaying a log that fenced a zombie later
            return
        entry.batches.append(
            BatchRange(
                first_sequence=base_sequence,
                last_sequence=last_sequence(base_sequence, last_offset_delta),
                base_offset=base_offset,
                last_offset=last_offset,
            )
        )

    def record_batch(self, header: BatchHeader) -> None:
        """:meth:`record` a batch from its header, whose offsets are already assigned."""
        self.record(
            producer_id=header.producer_id,
            epoch=header.producer_epoch,
            base_sequence=header.base_sequence,
            last_offset_delta=header.last_offset_delta,
            base_offset=header.base_offset,
            last_offset=header.base_offset + header.last_offset_delta,
        )

    @classmethod
    def from_headers(cls, headers: Iterable[BatchHeader]) -> ProducerStateTable:
        """The state a log implies, replayed from its batch headers (no record decoded)."""
        table = cls()
        for header in headers:
            table.record_batch(header)
        return table

    def bump_epoch(self, *, producer_id: int, epoch: int) -> None:
        """Fence older epochs of a producer (InitProducerId with a known id)."""
        entry = self._producers.get(producer_id)
        if entry is not None and epoch > entry.epoch:
            self._producers[producer_id] = _Producer(epoch=epoch, batches=deque(maxlen=MAX_BATCHES))

    def truncate_to(self, offset: int) -> None:
        """Forget batches at or after ``offset`` (the log was truncated there)."""
        for producer_id in list(self._producers):
            entry = self._producers[producer_id]
            kept = [b for b in entry.batches if b.last_offset < offset]
            if kept:
                entry.batches = deque(kept, maxlen=MAX_BATCHES)
            else:
                del self._producers[producer_id]
