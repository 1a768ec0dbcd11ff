"""The time index of one segment: ``<base>.timeindex``.

Entries are 12 bytes, big-endian ``(timestamp i64, relative offset u32)``, written
in lockstep with the offset index: entry *i* of both files names the same batch.
Its timestamp is the largest ``maxTimestamp`` of all batches *before* that batch in
the segment (-1 if none), so timestamps never decrease and a lookup for ``ts`` may
start at the last entry whose timestamp is below ``ts``: no earlier batch can hold a
record at or after ``ts``. The segment's overall maximum is kept in memory.
"""

from __future__ import annotations

import bisect
import struct

from rift_broker.log.offset_index import IndexCorruptError
from rift_broker.storage import StorageFile

__all__ = ["TimeIndex"]

_ENTRY = struct.Struct(">qI")
ENTRY_SIZE = _ENTRY.size


class TimeIndex:
    def __init__(self, file: StorageFile, *, base_offset: int):
        self.file = file
        self.base_offset = base_offset
        self._timestamps: list[int] = []
        self._relative: list[int] = []

    def __len__(self) -> int:
        return len(self._timestamps)

    def load(self) -> None:
        """Read the file; raises :class:`IndexCorruptError` if timestamps decrease."""
        raw = self.file.read(0, self.file.size())
        whole = len(raw) - len(raw) % ENTRY_SIZE
        timestamps: list[int] = []
        relative: list[int] = []
        for ts, rel in _ENTRY.iter_unpack(raw[:whole]):
            if timestamps and (ts < timestamps[-1] or rel <= relative[-1]):
                raise IndexCorruptError(
                    f"{self.file.path}: entry {len(timestamps)} ({ts}, {rel}) is out of order"
                )
            timestamps.append(ts)
            relative.append(rel)
        self._timestamps, self._relative = timestamps, relative
        if whole != len(raw):
            self.file.truncate(whole)

    def entry(self, index: int) -> tuple[int, int]:
        """``(timestamp, absolute offset)`` of entry ``index``."""
        return self._timestamps[index], self.base_offset + self._relative[index]

    def append(self, *, timestamp: int, offset: int) -> None:
        rel = offset - self.base_offset
        self._timestamps.append(timestamp)
        self._relative.append(rel)
        self.file.append(_ENTRY.pack(timestamp, rel))

    def start_slot(self, timestamp: int) -> int:
        """Entries before which no batch can reach ``timestamp``: scan from entry - 1."""
        return bisect.bisect_left(self._timestamps, timestamp)

    def truncate_entries(self, count: int) -> None:
        if count < len(self._timestamps):
            del self._timestamps[count:]
            del self._relative[count:]
        self.file.truncate(count * ENTRY_SIZE)
