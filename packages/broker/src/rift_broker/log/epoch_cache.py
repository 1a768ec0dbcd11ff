"""The leader-epoch cache: at which offset each leader epoch started in this log.

Followers use it to truncate divergent tails (OffsetForLeaderEpoch, KIP-101/279):
``end_offset_for(epoch)`` answers "where did ``epoch`` end in your log?" with
Kafka's semantics. Entries strictly increase in both epoch and start offset. This
class is pure; the partition log persists it (``leader-epoch-checkpoint``) after
every change.
"""

from __future__ import annotations

from dataclasses import dataclass

from rift_broker.log.errors import InvalidEpochError

__all__ = ["EpochEntry", "LeaderEpochCache", "UNDEFINED_EPOCH", "UNDEFINED_OFFSET"]

UNDEFINED_EPOCH = -1
UNDEFINED_OFFSET = -1


@dataclass(frozen=True, slots=True, kw_only=True)
class EpochEntry:
    epoch: int
    start_offset: int


class LeaderEpochCache:
    def __init__(self, entries: list[EpochEntry] | None = None):
        self._entries: list[EpochEntry] = list(entries or [])

    @property
    def entries(self) -> tuple[EpochEntry, ...]:
        return tuple(self._entries)

    def as_dict(self) -> dict[int, int]:
        """Epoch -> start offset."""
        return {entry.epoch: entry.start_offset for entry in self._entries}

    @property
    def latest_epoch(self) -> int | None:
        return self._entries[-1].epoch if self._entries else None

    def assign(self, *, epoch: int, start_offset: int) -> bool:
        """Record that ``epoch`` starts at ``start_offset``; True if the cache changed."""
        latest = self.latest_epoch
        if latest is not None and epoch == latest:
            return False
        if latest is not None and epoch < latest:
            raise InvalidEpochError(f"leader epoch {epoch} is older than the log's epoch {latest}")
        # A new epoch starting at or before an older one's start supersedes it.
        while self._entries and self._entries[-1].start_offset >= start_offset:
            self._entries.pop()
        self._entries.append(EpochEntry(epoch=epoch, start_offset=start_offset))
        return True

    def truncate_from_end(self, end_offset: int) -> bool:
        """Forget epochs that start at or after ``end_offset`` (log truncated there)."""
        before = len(self._entries)
        while self._entries and self._entries[-1].start_offset >= end_offset:
            self._entries.pop()
        return len(self._entries) != before

    def truncate_from_start(self, start_offset: int) -> bool:
        """The log now starts at ``start_offset``: drop epochs wholly before it."""
        changed = False
        while len(self._entries) >= 2 and self._entries[1].start_offset <= start_offset:
            self._entries.pop(0)
            changed = True
        if self._entries and self._entries[0].start_offset < start_offset:
            self._entries[0] = EpochEntry(epoch=self._entries[0].epoch, start_offset=start_offset)
            changed = True
        return changed

    def end_offset_for(self, epoch: int, *, log_end_offset: int) -> tuple[int, int]:
        """Kafka's OffsetForLeaderEpoch answer ``(epoch, end offset)`` for ``epoch``.

        The latest epoch ends at the log end. Otherwise: the largest known epoch
        <= ``epoch`` and the start offset of the first epoch above ``epoch``; a
        requested epoch below every known one gets itself and the first start
        offset; above every known one, or unknown cache: (-1, -1).
        """
        if epoch == UNDEFINED_EPOCH or not self._entries:
            return UNDEFINED_EPOCH, UNDEFINED_OFFSET
        if epoch == self._entries[-1].epoch:
            return epoch, log_end_offset
        higher = next((e for e in self._entries if e.epoch > epoch), None)
        if higher is None:
            return UNDEFINED_EPOCH, UNDEFINED_OFFSET
        floor = [e for e in self._entries if e.epoch <= epoch]
        if not floor:
            return epoch, higher.start_offset
        return floor[-1].epoch, higher.start_offset

    def encode(self) -> list[str]:
        return [f"{entry.epoch} {entry.start_offset}" for entry in self._entries]

    @classmethod
    def decode(cls, lines: list[str]) -> LeaderEpochCache | None:
        entries: list[EpochEntry] = []
        try:
            for line in lines:
                epoch_text, offset_text = line.split()
                entry = EpochEntry(epoch=int(epoch_text), start_offset=int(offset_text))
                if entries and (
                    entry.epoch <= entries[-1].epoch
                    or entry.start_offset <= entries[-1].start_offset
                ):
                    return None
                entries.append(entry)
        except ValueError:
            return None
        return cls(entries)
