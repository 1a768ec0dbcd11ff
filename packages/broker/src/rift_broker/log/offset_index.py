"""The sparse offset index of one segment: ``<base>.index``.

Entries are 8 bytes, big-endian ``(relative offset u32, file position u32)``, one
for the first batch written after every ``index_interval_bytes`` of log data. An
entry points at the *start* of a batch. Position 0 is implied: a lookup below the
first entry starts at the head of the segment. The entries live in memory (two
lists, bisected) and are appended to the file as they are made; the file is only a
cache of what a scan of the log would rebuild, so recovery may drop or rebuild it.
"""

from __future__ import annotations

import bisect
import struct

from rift_broker.storage import StorageFile

__all__ = ["OffsetIndex", "IndexCorruptError"]

_ENTRY = struct.Struct(">II")
ENTRY_SIZE = _ENTRY.size


class IndexCorruptError(ValueError):
    """An index file fails validation; recovery rebuilds it from the log."""


class OffsetIndex:
    def __init__(self, file: StorageFile, *, base_offset: int):
        self.file = file
        self.base_offset = base_offset
        self._relative: list[int] = []
        self._positions: list[int] = []

    def __len__(self) -> int:
        return len(self._positions)

    def load(self, *, log_size: int) -> None:
        """Read the file, dropping a torn partial entry and entries past the log's end.

        Entries past the end are what a crash leaves when index pages reached the
        disk before the log pages they point into. Raises :class:`IndexCorruptError`
        unless offsets and positions strictly increase.
        """
        raw = self.file.read(0, self.file.size())
        whole = len(raw) - len(raw) % ENTRY_SIZE
        relative: list[int] = []
        positions: list[int] = []
        for rel, pos in _ENTRY.iter_unpack(raw[:whole]):
            if pos >= log_size:
                break
            if positions and (rel <= relative[-1] or pos <= positions[-1]):
                raise IndexCorruptError(
                    f"{self.file.path}: entry {len(positions)} ({rel}, {pos}) is out of order"
                )
            relative.append(rel)
            positions.append(pos)
        self._relative, self._positions = relative, positions
        if len(positions) * ENTRY_SIZE != len(raw):
            self.file.truncate(len(positions) * ENTRY_SIZE)

    def entry(self, index: int) -> tuple[int, int]:
        """``(absolute offset, position)`` of entry ``index``."""
        return self.base_offset + self._relative[index], self._positions[index]

    def append(self, *, offset: int, position: int) -> None:
        rel = offset - self.base_offset
        self._relative.append(rel)
        self._positions.append(position)
        self.file.append(_ENTRY.pack(rel, position))

    def lookup(self, offset: int) -> tuple[int, int]:
        """The last entry at or below ``offset`` as ``(offset, position)``; else the head."""
        i = bisect.bisect_right(self._relative, offset - self.base_offset)
        if i == 0:
            return self.base_offset, 0
        return self.base_offset + self._relative[i - 1], self._positions[i - 1]

    def slot_for_position(self, position: int) -> int:
        """Number of entries whose position is below ``position``."""
        return bisect.bisect_left(self._positions, position)

    def truncate_entries(self, count: int) -> None:
        """Keep only the first ``count`` entries (in memory and on file)."""
        if count < len(self._positions):
            del self._relative[count:]
            del self._positions[count:]
        self.file.truncate(count * ENTRY_SIZE)
