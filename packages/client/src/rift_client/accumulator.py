"""The producer's record accumulator (sans-IO: every method takes ``now``).

Theory of operation. Records are appended to a queue of batches per partition.
The head batch of a partition is *ready* when it is full, has lingered ``linger``
seconds, has a successor (so it can no longer grow), is being retried, or a flush
is pending. :meth:`Accumulator.ready` drains ready heads and marks their partitions
*in flight*; at most one batch per partition is in flight, so a retried batch is
always resent before any later one and per-partition order survives retries and
leader changes, with or without idempotence.

Idempotence: a batch gets its base sequence the first time it is drained and keeps
it across retries; the partition's next sequence advances by the batch's record
count. If an idempotent batch fails for good, the sequence state is no longer
known to match the broker's, so :attr:`Accumulator.needs_reset` is set: draining
stops until nothing is in flight, the driver obtains a new producer id, and
:meth:`reset` restarts every partition's sequence at 0.

The outcome of each batch is decided by the driver with
:class:`rift_client.outcome.RetryPolicy`; this module only keeps the queues.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from rift_client.records import Record, estimate_size
from rift_client.types import TopicPartition

__all__ = ["ProducerBatch", "Accumulator"]

_SEQUENCE_WRAP = 2**31


@dataclass(slots=True, eq=False)
class ProducerBatch:
    """A batch being built or delivered (mutable: internal to the producer)."""

    tp: TopicPartition
    created_at: float
    records: list[Record] = field(default_factory=list)
    tokens: list[object] = field(default_factory=list)
    size: int = 0
    closed: bool = False
    attempts: int = 0
    base_sequence: int = -1
    maybe_applied: bool = False
    retry_at: float = 0.0


class Accumulator:
    def __init__(
        self, *, linger: float = 0.005, max_batch_bytes: int = 16384, idempotent: bool = False
    ) -> None:
        if linger < 0 or max_batch_bytes <= 0:
            raise ValueError("linger must be >= 0 and max_batch_bytes > 0")
        self.linger = linger
        self.max_batch_bytes = max_batch_bytes
        self.idempotent = idempotent
        self.needs_reset = False
        self._queues: dict[TopicPartition, deque[ProducerBatch]] = {}
        self._in_flight: set[TopicPartition] = set()
        self._next_sequence: dict[TopicPartition, int] = {}
        self._flushing = 0

    # --- appending -----------------------------------------------------------

    def needs_new_batch(self, tp: TopicPartition, record: Record, *, size: int = -1) -> bool:
        """Whether appending ``record`` (of estimated ``size``) to ``tp`` opens a new batch."""
        queue = self._queues.get(tp)
        if not queue:
            return True
        tail = queue[-1]
        if size < 0:
            size = estimate_size(record)
        return tail.closed or tail.size + size > self.max_batch_bytes

    def append(
        self, tp: TopicPartition, record: Record, token: object, *, now: float, size: int = -1
    ) -> bool:
        """Add ``record``; ``token`` comes back with the batch. True if a batch was opened."""
        if size < 0:
            size = estimate_size(record)
        created = self.needs_new_batch(tp, record, size=size)
        queue = self._queues.setdefault(tp, deque())
        if created:
            if queue:
                queue[-1].closed = True
            queue.append(ProducerBatch(tp=tp, created_at=now))
        batch = queue[-1]
        batch.records.append(record)
        batch.tokens.append(token)
        batch.size += size
        if batch.size >= self.max_batch_bytes:
            batch.closed = True
        return created

    # --- draining ------------------------------------------------------------

    def _is_ready(self, queue: deque[ProducerBatch], now: float) -> bool:
        head = queue[0]
        if head.retry_at > now:
            return False
        return (
            head.closed
            or len(queue) > 1
            or head.attempts > 0
            or self._flushing > 0
            or now >= head.created_at + self.linger
        )

    def ready(self, *, now: float) -> list[ProducerBatch]:
        """Drain the ready head batches; they are in flight until resolved."""
        if self.needs_reset:
            return []
        drained = []
        for tp, queue in self._queues.items():
            if not queue or tp in self._in_flight or not self._is_ready(queue, now):
                continue
            head = queue[0]
            head.closed = True
            if self.idempotent and head.base_sequence < 0:
                head.base_sequence = self._next_sequence.get(tp, 0)
                self._next_sequence[tp] = (head.base_sequence + len(head.records)) % (
                    _SEQUENCE_WRAP
                )
            self._in_flight.add(tp)
            drained.append(head)
        return drained

    def next_wakeup(self, *, now: float) -> float | None:
        """When a batch that is not ready now becomes ready by time alone."""
        times = []
        for tp, queue in self._queues.items():
            if not queue or tp in self._in_flight:
                continue
            head = queue[0]
            times.append(max(head.retry_at, head.created_at + self.linger))
        return min(times) if times else None

    def expired(self, *, deadline: float, now: float) -> list[ProducerBatch]:
        """Remove and return batches not in flight that were created ``deadline`` ago."""
        result = []
        for tp, queue in self._queues.items():
            if tp in self._in_flight:
                continue
            while queue and now >= queue[0].created_at + deadline:
                result.append(queue.popleft())
        if result and self.idempotent and any(b.base_sequence >= 0 for b in result):
            self.needs_reset = True
        return result

    # --- resolving -----------------------------------------------------------

    def _pop(self, batch: ProducerBatch) -> None:
        queue = self._queues[batch.tp]
        if not queue or queue[0] is not batch:
            raise ValueError("only the in-flight head batch can be resolved")
        queue.popleft()
        self._in_flight.discard(batch.tp)
        if not queue:
            del self._queues[batch.tp]

    def complete(self, batch: ProducerBatch) -> None:
        self._pop(batch)

    def fail(self, batch: ProducerBatch) -> None:
        self._pop(batch)
        if self.idempotent:
            self.needs_reset = True

    def retry(self, batch: ProducerBatch, *, retry_at: float) -> None:
        """Put the batch back at the head of its queue, to be drained at ``retry_at``."""
        if self._queues.get(batch.tp, deque([None]))[0] is not batch:
            raise ValueError("only the in-flight head batch can be retried")
        batch.retry_at = retry_at
        self._in_flight.discard(batch.tp)

    def reset(self) -> None:
        """A new producer id: sequences restart, unsent batches get new ones."""
        if self._in_flight:
            raise ValueError("reset only when nothing is in flight")
        self._next_sequence.clear()
        for queue in self._queues.values():
            for batch in queue:
                batch.base_sequence = -1
        self.needs_reset = False

    # --- flushing and introspection ------------------------------------------

    def begin_flush(self) -> None:
        self._flushing += 1

    def end_flush(self) -> None:
        self._flushing = max(0, self._flushing - 1)

    def is_in_flight(self, batch: ProducerBatch) -> bool:
        queue = self._queues.get(batch.tp)
        return (
            queue is not None and bool(queue) and queue[0] is batch and batch.tp in self._in_flight
        )

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def pending(self) -> int:
        """Batches queued or in flight."""
        return sum(len(q) for q in self._queues.values())

    def batches(self) -> list[ProducerBatch]:
        return [b for q in self._queues.values() for b in q]
