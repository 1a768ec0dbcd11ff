"""Committed offsets: the store OffsetFetch reads, and how a commit becomes durable.

An offset is *committed* only once its record is durable in ``__consumer_offsets``;
until then OffsetFetch does not see it. A commit request becomes a
:class:`PendingCommit` plus the records of its valid partitions (one append, so a
commit is all-or-nothing); :func:`finish_commit` answers it when the append ends.

Appends for one ``__consumer_offsets`` partition become durable in the order they
were made, but a driver may report them in any order, so every applied value carries
its append's sequence number and an older append never overwrites a newer one
(loaded values have sequence 0, older than any append this coordinator makes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rift_broker.group._errors import GroupErrorCode as E
from rift_broker.group._messages import (
    CommitPartitionResult,
    CommitReply,
    FetchedOffset,
    FetchReply,
    OffsetCommitEntry,
)
from rift_broker.group._records import OffsetKey, OffsetsRecord, OffsetValue, encode_offset

__all__ = ["OffsetStore", "PendingCommit", "prepare_commit", "finish_commit", "fetch"]


class OffsetStore:
    """``group -> (topic, partition) -> OffsetValue``, with last-append-wins ordering."""

    def __init__(self) -> None:
        self._groups: dict[str, dict[tuple[str, int], tuple[int, OffsetValue | None]]] = {}

    def apply(
        self, group_id: str, topic: str, partition: int, value: OffsetValue | None, *, seq: int
    ) -> None:
        """Record ``value`` (None: a tombstone) unless a later append already set it."""
        offsets = self._groups.setdefault(group_id, {})
        current = offsets.get((topic, partition))
        if current is None or current[0] <= seq:
            offsets[(topic, partition)] = (seq, value)

    def committed(self, group_id: str) -> dict[tuple[str, int], OffsetValue]:
        """Every committed offset of ``group_id``, sorted by (topic, partition)."""
        offsets = self._groups.get(group_id, {})
        return {tp: v for tp, (_, v) in sorted(offsets.items()) if v is not None}

    def group_ids(self) -> set[str]:
        return set(self._groups)

    def drop(self, group_id: str) -> None:
        self._groups.pop(group_id, None)


@dataclass(slots=True, kw_only=True)
class PendingCommit:
    """A commit waiting for its append. ``value`` None: that partition already failed."""

    request_id: int
    group_id: str
    entries: list[tuple[OffsetCommitEntry, OffsetValue | None]] = field(default_factory=list)
    errors: list[int] = field(default_factory=list)  # one per failed entry, in order


def prepare_commit(
    *,
    request_id: int,
    group_id: str,
    offsets: Sequence[OffsetCommitEntry],
    error: int,
    max_metadata_size: int,
    now_ms: int,
) -> tuple[PendingCommit, list[OffsetsRecord]]:
    """The pending commit and the records to append; ``error`` fails every partition."""
    pending = PendingCommit(request_id=request_id, group_id=group_id)
    records = []
    for entry in offsets:
        value = None
        metadata = entry.metadata or ""  # Kafka stores a null metadata as ""
        if error != E.NONE:
            pending.errors.append(error)
        elif len(metadata) > max_metadata_size:
            pending.errors.append(E.OFFSET_METADATA_TOO_LARGE)
        else:
            value = OffsetValue(
                offset=entry.offset,
                leader_epoch=entry.leader_epoch,
                metadata=metadata,
                commit_timestamp_ms=now_ms,
            )
            key = OffsetKey(group_id=group_id, topic=entry.topic, partition=entry.partition)
            records.append(encode_offset(key, value))
        pending.entries.append((entry, value))
    return pending, records


def finish_commit(
    store: OffsetStore, pending: PendingCommit, error: int, *, seq: int
) -> CommitReply:
    """Answer ``pending`` whose append ended with ``error``; apply it when durable (0)."""
    results = []
    errors = iter(pending.errors)
    for entry, value in pending.entries:
        code = error if value is not None else next(errors)
        if value is not None and error == E.NONE:
            store.apply(pending.group_id, entry.topic, entry.partition, value, seq=seq)
        results.append(
            CommitPartitionResult(topic=entry.topic, partition=entry.partition, error=code)
        )
    return CommitReply(request_id=pending.request_id, partitions=tuple(results))


def fetch(
    store: OffsetStore,
    *,
    request_id: int,
    group_id: str,
    partitions: Sequence[tuple[str, int]] | None,
    error: int,
) -> FetchReply:
    """OffsetFetch: committed offsets, -1 where none; ``partitions=None`` means all."""
    if error != E.NONE:
        failed = tuple(
            FetchedOffset(topic=t, partition=p, offset=-1, error=error) for t, p in partitions or ()
        )
        return FetchReply(request_id=request_id, error=error, partitions=failed)
    committed = store.committed(group_id)
    fetched = []
    for topic, partition in list(committed) if partitions is None else partitions:
        value = committed.get((topic, partition))
        if value is None:
            fetched.append(FetchedOffset(topic=topic, partition=partition, offset=-1))
            continue
        fetched.append(
            FetchedOffset(
                topic=topic,
                partition=partition,
                offset=value.offset,
                leader_epoch=value.leader_epoch,
                metadata=value.metadata,
            )
        )
    return FetchReply(request_id=request_id, error=E.NONE, partitions=tuple(fetched))
