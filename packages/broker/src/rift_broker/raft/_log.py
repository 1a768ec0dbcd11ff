"""The in-memory Raft log: a snapshot boundary plus the entries after it.

Indexes start at 1. ``offset`` is the index of the last entry folded into the
snapshot (0 without one) and ``offset_term`` its term, so ``term_at(offset)`` is
still answerable after compaction — the consistency check of an AppendEntries
whose ``prev_log_index`` sits exactly on the boundary needs it.

Invariants: ``entries[i].index == offset + 1 + i``; terms never decrease along the
log. The log knows nothing of what is durable: the node tracks that (``unstable``).
"""

from __future__ import annotations

from collections.abc import Iterable

from rift_broker.raft._messages import Entry, Snapshot

__all__ = ["RaftLog"]


class RaftLog:
    __slots__ = ("entries", "offset", "offset_term")

    def __init__(self, *, snapshot: Snapshot | None = None, entries: Iterable[Entry] = ()) -> None:
        self.offset = snapshot.index if snapshot is not None else 0
        self.offset_term = snapshot.term if snapshot is not None else 0
        self.entries: list[Entry] = []
        for entry in entries:
            if entry.index <= self.offset:
                continue  # a store may keep entries below its snapshot for a while
            if entry.index != self.last_index + 1:
                raise ValueError(f"log entries are not contiguous at index {entry.index}")
            self.entries.append(entry)

    @property
    def last_index(self) -> int:
        return self.offset + len(self.entries)

    @property
    def last_term(self) -> int:
        return self.entries[-1].term if self.entries else self.offset_term

    def term_at(self, index: int) -> int | None:
        """The term of the entry at ``index``, or None if compacted away or absent."""
        if index == self.offset:
            return self.offset_term
        if index < self.offset or index > self.last_index:
            return None
        return self.entries[index - self.offset - 1].term

    def entry(self, index: int) -> Entry:
        return self.entries[index - self.offset - 1]

    def slice(self, start: int, stop: int) -> list[Entry]:
        """Entries with ``start <= index < stop``; ``start`` must be above ``offset``."""
        assert start > self.offset, (start, self.offset)
        return self.entries[start - self.offset - 1 : stop - self.offset - 1]

    def up_to_date(self, last_index: int, last_term: int) -> bool:
        """Whether a candidate's log is at least as up to date as ours (Raft §5.4.1)."""
        return (last_term, last_index) >= (self.last_term, self.last_index)

    def first_index_of_term(self, index: int, *, floor: int) -> int:
        """The lowest index above ``floor`` holding the same term as ``index``."""
        term = self.term_at(index)
        while index - 1 > max(floor, self.offset) and self.term_at(index - 1) == term:
            index -= 1
        return index

    def append(self, entry: Entry) -> None:
        assert entry.index == self.last_index + 1, (entry.index, self.last_index)
        assert entry.term >= self.last_term
        self.entries.append(entry)

    def truncate_from(self, index: int) -> None:
        """Drop every entry at ``index`` and above (a conflicting, uncommitted tail)."""
        assert index > self.offset
        del self.entries[index - self.offset - 1 :]

    def compact(self, index: int) -> None:
        """Fold every entry up to ``index`` into the snapshot boundary."""
        if index <= self.offset:
            return
        assert index <= self.last_index
        term = self.term_at(index)
        assert term is not None
        del self.entries[: index - self.offset]
        self.offset, self.offset_term = index, term

    def reset(self, snapshot: Snapshot) -> None:
        """Discard the whole log: it restarts right after ``snapshot``."""
        self.entries = []
        self.offset, self.offset_term = snapshot.index, snapshot.term
