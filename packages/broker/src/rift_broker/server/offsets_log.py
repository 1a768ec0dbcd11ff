"""Where ``__consumer_offsets`` lives: the storages behind the group driver.

:class:`LocalOffsetsLog` is the single-node broker's. The internal topic is an
ordinary topic of this broker's registry, created at start when missing
(:func:`ensure_offsets_topic`, ``offsets_partitions`` partitions; an existing
topic keeps the count it was created with, since a group's partition depends on
it). Retention is off for it: without compaction, deleting an old segment would
delete offsets nobody committed again. An append is an acks=all produce of one
uncompressed batch that completes when the partition's high watermark covers it
(the group-committed fsync under ``durability="fsync"``); a read replays the
partition below the high watermark. Clients may read the topic but not write it
(Produce answers INVALID_TOPIC_EXCEPTION), so only the coordinator's batches are
in it.

:class:`MemoryOffsetsLog` is the in-memory fake: appends complete at once, or when
a test says so, and the log can be handed to a new driver to play a failover.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rift_broker.errors import KafkaError, UnknownTopicOrPartition
from rift_broker.group import (
    OFFSETS_TOPIC,
    OFFSETS_TOPIC_CONFIGS,
    OffsetsRecord,
    SkippedRecords,
    decode_batch,
    encode_batch,
)
from rift_broker.records import InvalidBatchError, iter_batches
from rift_broker.server.context import wall_clock_ms
from rift_broker.server.partition import Partition
from rift_broker.server.registry import Topic, TopicRegistry
from rift_broker.server.topics import TopicSpec

__all__ = [
    "ensure_offsets_topic",
    "read_offsets_partition",
    "LocalOffsetsLog",
    "MemoryOffsetsLog",
    "PendingAppend",
]

_log = logging.getLogger("rift_broker.groups")
_READ_CHUNK = 1 << 20


def read_offsets_partition(
    partition: int, read: Callable[..., bytes], *, start: int, end: int
) -> list[OffsetsRecord]:
    """The records of ``__consumer_offsets``-``partition`` from ``start`` to ``end``,
    in log order; ``read(offset, max_bytes=...)`` returns whole batches from the
    one holding ``offset``. The local and the replicated storage both read this way."""
    records: list[OffsetsRecord] = []
    skipped = SkippedRecords()
    offset = start
    while offset < end:
        chunk = read(offset, max_bytes=_READ_CHUNK)
        if not chunk:
            break
        last = None
        try:
            for position, header in iter_batches(chunk):
                records.extend(decode_batch(chunk, position, header, skipped))
                last = header
        except InvalidBatchError as e:  # recovery validated the log: a bug or bit rot
            _log.error("%s-%d: stopped reading at %d: %s", OFFSETS_TOPIC, partition, offset, e)
            break
        assert last is not None
        offset = last.next_offset
    if skipped.compressed_batches or skipped.keyless_records:
        _log.warning(
            "%s-%d: skipped %d compressed batch(es) and %d keyless record(s)",
            OFFSETS_TOPIC,
            partition,
            skipped.compressed_batches,
            skipped.keyless_records,
        )
    return records


def ensure_offsets_topic(registry: TopicRegistry, *, partitions: int, now_ms: int) -> Topic:
    """The ``__consumer_offsets`` topic, created with ``partitions`` partitions if missing."""
    topic = registry.get(OFFSETS_TOPIC)
    if topic is None:
        spec = TopicSpec(
            name=OFFSETS_TOPIC,
            partitions=partitions,
            configs=dict(OFFSETS_TOPIC_CONFIGS),
        )
        return registry.create(spec, now_ms=now_ms)
    if topic.spec.partitions != partitions:
        _log.warning(
            "%s has %d partitions; keeping them (offsets-partitions %d applies only when"
            " the topic is created)",
            OFFSETS_TOPIC,
            topic.spec.partitions,
            partitions,
        )
    return topic


class LocalOffsetsLog:
    """``__consumer_offsets`` on this broker's own partition logs (see the module docstring)."""

    def __init__(self, topic: Topic, *, clock: Callable[[], int] = wall_clock_ms) -> None:
        self._partitions = topic.partitions
        self._clock = clock
        self._tasks: set[asyncio.Task[None]] = set()

    def _partition(self, index: int) -> Partition:
        if not 0 <= index < len(self._partitions):
            raise UnknownTopicOrPartition(f"{OFFSETS_TOPIC}-{index}")
        return self._partitions[index]

    def append(
        self, partition: int, records: Sequence[OffsetsRecord], done: Callable[[int], None]
    ) -> None:
        now_ms = self._clock()
        try:
            target = self._partition(partition)
            outcome = target.append(
                encode_batch(records, timestamp_ms=now_ms), acks=-1, now_ms=now_ms
            )
        except KafkaError as e:
            done(e.code)
            return
        # Synchronous up to here, so appends keep the order of the calls.
        task = asyncio.get_running_loop().create_task(
            self._complete(target, outcome.end_offset, done)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _complete(target: Partition, end_offset: int, done: Callable[[int], None]) -> None:
        try:
            await target.durable(end_offset)
        except KafkaError as e:
            done(e.code)
            return
        done(0)

    def read(self, partition: int) -> list[OffsetsRecord]:
        target = self._partition(partition)
        return read_offsets_partition(
            partition, target.read, start=target.log_start_offset, end=target.high_watermark
        )

    async def close(self, *, timeout_s: float = 10.0) -> None:
        """Wait (bounded) for the completions still running, while the partitions are
        still open: their ``done`` callbacks report the outcome."""
        if self._tasks:
            _done, late = await asyncio.wait(set(self._tasks), timeout=timeout_s)
            for task in late:
                task.cancel()


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingAppend:
    partition: int
    records: tuple[OffsetsRecord, ...]
    done: Callable[[int], None]


class MemoryOffsetsLog:
    """An in-memory ``__consumer_offsets``: a list of committed records per partition.

    With ``auto_complete`` (the default) an append is committed before ``append``
    returns; otherwise it waits in :attr:`pending` until :meth:`complete`.
    """

    def __init__(
        self, *, log: dict[int, list[OffsetsRecord]] | None = None, auto_complete: bool = True
    ) -> None:
        self.log: dict[int, list[OffsetsRecord]] = log if log is not None else {}
        self.auto_complete = auto_complete
        self.pending: list[PendingAppend] = []
        self.appends = 0

    def append(
        self, partition: int, records: Sequence[OffsetsRecord], done: Callable[[int], None]
    ) -> None:
        self.appends += 1
        self.pending.append(PendingAppend(partition=partition, records=tuple(records), done=done))
        if self.auto_complete:
            self.complete()

    def read(self, partition: int) -> list[OffsetsRecord]:
        return list(self.log.get(partition, ()))

    def complete(self, count: int | None = None, *, error: int = 0) -> int:
        """Finish the oldest ``count`` appends pending now (default: all of them),
        committing their records when ``error`` is 0; returns how many were finished.
        Appends that their completions cause are left pending."""
        batch = self.pending[: len(self.pending) if count is None else count]
        del self.pending[: len(batch)]
        for append in batch:
            if error == 0:
                self.log.setdefault(append.partition, []).extend(append.records)
            append.done(error)
        return len(batch)
