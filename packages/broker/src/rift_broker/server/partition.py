"""One partition served by this broker: its log, producer state, durability and waiters.

Appending is split in two so that pipelined requests keep their order:
:meth:`Partition.append` is synchronous — it validates the batches, checks them
against the producer state, appends them to the log (unsynced) and records them —
and :meth:`Partition.durable` is the awaitable part (the group-committed fsync).
A produce handler calls ``append`` for all its partitions before its first
``await``, so two requests of one connection, handled as concurrent tasks started
in order, append in order; no other task can slip between a sequence check and the
append it justifies.

The high watermark is the offset consumers may read up to. With
``durability="fsync"`` it is the flushed offset: a consumer never sees a record a
crash could take back. Otherwise it is the log end offset.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rift_broker.errors import (
    CorruptMessage,
    KafkaStorageError,
    MessageTooLarge,
    NotEnoughReplicas,
    OffsetOutOfRange,
)
from rift_broker.log import LogError, PartitionLog
from rift_broker.log.errors import BatchTooLargeError, CorruptBatchError, OffsetOutOfRangeError
from rift_broker.producer_state import Duplicate, ProducerStateTable
from rift_broker.records import BatchHeader, InvalidBatchError, iter_batches
from rift_broker.server.flusher import Flusher
from rift_broker.server.topics import TopicSpec

if TYPE_CHECKING:
    from rift_broker.server.config import Durability

__all__ = ["AppendOutcome", "Partition"]

_log = logging.getLogger("rift_broker.server")


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendOutcome:
    base_offset: int
    end_offset: int  # one past the last offset of the appended (or original) batches
    log_start_offset: int


class Partition:
    __slots__ = (
        "_changed",
        "_durability",
        "_flusher",
        "_on_fatal",
        "index",
        "leader_epoch",
        "log",
        "producers",
        "spec",
        "topic",
    )

    def __init__(
        self,
        *,
        spec: TopicSpec,
        index: int,
        log: PartitionLog,
        durability: Durability,
        leader_epoch: int = 0,
        on_fatal: Callable[[str], None] = lambda reason: None,
    ) -> None:
        self.spec = spec
        self.topic = spec.name
        self.index = index
        self.log = log
        self.leader_epoch = leader_epoch
        self._durability = durability
        self.producers = ProducerStateTable()
        self._on_fatal = on_fatal
        self._flusher = Flusher(
            log,
            on_flushed=self._notify,
            on_failed=lambda e: on_fatal(f"fsync of {spec.name}-{index} failed: {e}"),
        )
        self._changed: asyncio.Future[None] | None = None
        self._rebuild_producer_state()

    def _rebuild_producer_state(self) -> None:
        for _position, header in self.log.batches_headers(from_offset=self.log.log_start_offset):
            self._record(header, header.base_offset)

    def _record(self, header: BatchHeader, base_offset: int) -> None:
        self.producers.record_batch(dataclasses.replace(header, base_offset=base_offset))

    # -- reading -----------------------------------------------------------------

    @property
    def high_watermark(self) -> int:
        if self._durability == "fsync":
            return self.log.flushed_offset
        return self.log.log_end_offset

    @property
    def fsyncs(self) -> int:
        """fsyncs that made appends durable (group commits), since the broker started."""
        return self._flusher.fsyncs

    @property
    def log_start_offset(self) -> int:
        return self.log.log_start_offset

    def read(self, offset: int, *, max_bytes: int) -> bytes:
        """Whole batches from ``offset`` below the high watermark; b"" at the end."""
        high_watermark = self.high_watermark
        if offset < self.log.log_start_offset or offset > self.log.log_end_offset:
            raise OffsetOutOfRange(
                f"offset {offset} outside [{self.log.log_start_offset}, {self.log.log_end_offset}]"
            )
        if offset >= high_watermark:
            return b""
        try:
            return bytes(self.log.read(offset, max_bytes=max_bytes, max_offset=high_watermark))
        except OffsetOutOfRangeError as e:  # retention moved the start meanwhile
            raise OffsetOutOfRange(str(e)) from None
        except LogError as e:
            raise KafkaStorageError(str(e)) from e

    def changed(self) -> asyncio.Future[None]:
        """A future resolved the next time the high watermark moves."""
        if self._changed is None or self._changed.done():
            self._changed = asyncio.get_running_loop().create_future()
        return self._changed

    def _notify(self) -> None:
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)

    # -- writing -----------------------------------------------------------------

    def append(self, records: bytes, *, acks: int, now_ms: int) -> AppendOutcome:
        """Validate, dedup and append (unsynced); raise the partition's Kafka error."""
        if acks == -1 and self.spec.min_insync_replicas > 1:
            raise NotEnoughReplicas(
                f"min.insync.replicas={self.spec.min_insync_replicas} but the ISR has one member"
            )
        try:
            batches = list(iter_batches(records))
        except InvalidBatchError as e:
            raise CorruptMessage(str(e)) from None
        if not batches:
            raise CorruptMessage("produce request without record batches")
        # Check and record batch by batch: the second batch of a producer in one
        # request follows the first. (A rejected batch fails the partition's answer
        # even if batches before it in the same request were appended; clients send
        # one batch per partition per request.)
        base_offset = -1
        first_duplicate: Duplicate | None = None
        duplicate_end = -1
        view = memoryview(records)
        for position, header in batches:
            verdict = self.producers.check(
                producer_id=header.producer_id,
                epoch=header.producer_epoch,
                base_sequence=header.base_sequence,
                last_offset_delta=header.last_offset_delta,
            )
            if isinstance(verdict, Duplicate):
                first_duplicate = first_duplicate or verdict
                duplicate_end = max(duplicate_end, verdict.last_offset + 1)
                continue
            try:
                info = self.log.append(
                    bytearray(view[position : position + header.size]),
                    leader_epoch=self.leader_epoch,
                    now_ms=now_ms,
                )
            except BatchTooLargeError as e:
                raise MessageTooLarge(str(e)) from None
            except CorruptBatchError as e:
                raise CorruptMessage(str(e)) from None
            except (LogError, OSError) as e:
                _log.error("append to %s-%d failed: %s", self.topic, self.index, e)
                if isinstance(e, OSError):  # a checkpoint's fsync failed: same as the log's
                    self._on_fatal(f"write to {self.topic}-{self.index} failed: {e}")
                raise KafkaStorageError(str(e)) from None
            self._record(header, info.base_offset)
            if self._durability == "fsync":
                self._flusher.note_append()
            if base_offset < 0:
                base_offset = info.base_offset
        if base_offset < 0 and first_duplicate is not None:  # all of them were retries
            # Answer with the original offsets once the originals are durable.
            return AppendOutcome(
                base_offset=first_duplicate.base_offset,
                end_offset=duplicate_end,
                log_start_offset=self.log.log_start_offset,
            )
        if self._durability != "fsync":
            self._notify()
        return AppendOutcome(
            base_offset=base_offset,
            end_offset=self.log.log_end_offset,
            log_start_offset=self.log.log_start_offset,
        )

    async def durable(self, end_offset: int) -> None:
        """Return once every offset below ``end_offset`` is fsynced (per the durability)."""
        if self._durability != "fsync":
            return
        try:
            await self._flusher.wait_flushed(end_offset)
        except LogError as e:
            raise KafkaStorageError(str(e)) from e

    def maintain(self, now_ms: int) -> int:
        """Roll an aged segment and delete expired ones; returns segments deleted.

        Retention must not run beside a flush, so a busy partition waits for the
        next round.
        """
        self.log.maybe_roll(now_ms)
        if self._flusher.busy:
            return 0
        return self.log.apply_retention(now_ms)

    async def close(self) -> None:
        try:
            await self._flusher.close()
        finally:
            self.log.close()
