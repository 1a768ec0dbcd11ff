"""One segment: ``<base>.log`` with its ``<base>.index`` and ``<base>.timeindex``.

A segment holds consecutive batches starting at offset ``base_offset``, stored
byte for byte as appended. In memory it knows its size, its end offset (the next
offset it would assign), its largest batch timestamp and how many of its bytes are
known durable. The indexes grow with the log: before writing a batch, if at least
``index_interval_bytes`` were written since the last entry, the batch gets an entry
in both indexes. Recovery replays exactly that rule, so a rebuilt index is identical
to the one appends would have made.

Positions are 32-bit in the index; the partition log rolls before a segment or its
offset range could outgrow them.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from rift_broker.log.offset_index import IndexCorruptError, OffsetIndex
from rift_broker.log.time_index import TimeIndex
from rift_broker.records import (
    HEADER_SIZE,
    NO_TIMESTAMP,
    BatchHeader,
    InvalidBatchError,
    parse_header,
    validate_batch,
)
from rift_broker.storage import Storage

__all__ = ["Segment", "TailProblem", "segment_name"]

_OFFSET_LENGTH = struct.Struct(">qi")


def segment_name(base_offset: int, suffix: str) -> str:
    return f"{base_offset:020d}{suffix}"


@dataclass(frozen=True, slots=True, kw_only=True)
class TailProblem:
    """Where recovery found the first invalid bytes of a segment."""

    position: int
    offset: int  # the offset the bad batch should have started at
    reason: str


class Segment:
    def __init__(
        self, *, storage: Storage, directory: str, base_offset: int, index_interval_bytes: int
    ):
        self.base_offset = base_offset
        self.path = f"{directory}/{segment_name(base_offset, '.log')}"
        self.log = storage.open(self.path)
        self.index = OffsetIndex(
            storage.open(f"{directory}/{segment_name(base_offset, '.index')}"),
            base_offset=base_offset,
        )
        self.time_index = TimeIndex(
            storage.open(f"{directory}/{segment_name(base_offset, '.timeindex')}"),
            base_offset=base_offset,
        )
        self._storage = storage
        self._interval = index_interval_bytes
        self.size = self.log.size()
        self.next_offset = base_offset
        self.max_timestamp = NO_TIMESTAMP
        self._since_index = 0
        self.synced_size = 0  # bytes of the log file known durable
        self.indexes_synced = False
        self.rolling_ms = 0  # when the first batch arrived (age-based roll); set by the log

    # -- appending --

    def append(self, data: bytes | bytearray | memoryview, header: BatchHeader) -> int:
        """Write one batch whose header (already stamped) is ``header``; return its position."""
        position = self.size
        if self._since_index >= self._interval:
            self.index.append(offset=header.base_offset, position=position)
            self.time_index.append(timestamp=self.max_timestamp, offset=header.base_offset)
            self._since_index = 0
        self.log.append(data)
        self.size += header.size
        self._since_index += header.size
        self.next_offset = header.next_offset
        self.max_timestamp = max(self.max_timestamp, header.max_timestamp)
        return position

    @property
    def is_empty(self) -> bool:
        return self.size == 0

    # -- reading --

    def header_at(self, position: int) -> BatchHeader:
        return parse_header(self.log.read(position, HEADER_SIZE))

    def headers(self, position: int = 0) -> Iterator[tuple[int, BatchHeader]]:
        """``(position, header)`` of every batch from ``position`` (a batch start) on."""
        while position < self.size:
            header = self.header_at(position)
            yield position, header
            position += header.size

    def locate(self, offset: int) -> int | None:
        """Position of the batch holding ``offset``, or None if past this segment."""
        if offset >= self.next_offset:
            return None
        _, start = self.index.lookup(offset)
        for position, header in self.headers(start):
            if header.last_offset >= offset:
                return position
        return None

    def read(self, position: int, *, max_bytes: int, max_offset: int, at_least_one: bool) -> bytes:
        """Whole batches from ``position`` up to ``max_bytes``, none based at >= max_offset."""
        chunk = self.log.read(position, min(max(max_bytes, HEADER_SIZE), self.size - position))
        first = parse_header(chunk)
        if first.base_offset >= max_offset:
            return b""
        if first.size > len(chunk):
            if not at_least_one and first.size > max_bytes:
                return b""
            chunk = self.log.read(position, first.size)
        end = 0
        limit = max(max_bytes, first.size) if at_least_one else max_bytes
        while end + _OFFSET_LENGTH.size <= len(chunk):
            base, length = _OFFSET_LENGTH.unpack_from(chunk, end)
            size = length + _OFFSET_LENGTH.size
            if base >= max_offset or end + size > min(len(chunk), limit):
                break
            end += size
        return chunk[:end]

    def find_timestamp(self, timestamp: int) -> BatchHeader | None:
        """The first batch whose max timestamp is >= ``timestamp``."""
        slot = self.time_index.start_slot(timestamp)
        position = self.index.entry(slot - 1)[1] if slot > 0 else 0
        for _, header in self.headers(position):
            if header.max_timestamp >= timestamp:
                return header
        return None

    # -- recovery and truncation --

    def load_indexes(self) -> str | None:
        """Load both index files; on damage empty them and return what was wrong."""
        try:
            self.index.load(log_size=self.size)
            self.time_index.load()
            count = min(len(self.index), len(self.time_index))
            for slot in range(count):
                if self.index.entry(slot)[0] != self.time_index.entry(slot)[1]:
                    raise IndexCorruptError(f"{self.path}: index and time index disagree")
        except IndexCorruptError as error:
            self.index.truncate_entries(0)
            self.time_index.truncate_entries(0)
            return str(error)
        self.index.truncate_entries(count)
        self.time_index.truncate_entries(count)
        return None

    def recover(self) -> TailProblem | None:
        """Re-validate from the last trustworthy index entry to the end of the file.

        An index entry is trusted if the batch it points at is whole, starts at the
        entry's offset and passes its CRC; untrusted entries are dropped. Index
        entries for the scanned batches are (re)made. Stops at the first invalid
        batch and returns where it is (the caller truncates or reports); the
        segment's in-memory state then describes the valid prefix only.
        """
        slot = len(self.index)
        while slot > 0:
            offset, position = self.index.entry(slot - 1)
            if self._valid_at(position, offset):
                break
            slot -= 1
        self.index.truncate_entries(slot)
        self.time_index.truncate_entries(slot)
        return self._scan_tail(validate=True)

    def truncate_at(self, position: int) -> None:
        """Drop every byte from ``position`` (a batch start) on, index entries too."""
        slot = self.index.slot_for_position(position)
        self.index.truncate_entries(slot)
        self.time_index.truncate_entries(slot)
        self.log.truncate(position)
        self.size = position
        self.synced_size = min(self.synced_size, position)
        self.indexes_synced = False
        self._scan_tail(validate=False)

    def _valid_at(self, position: int, offset: int) -> bool:
        try:
            header = self.header_at(position)
            if header.base_offset != offset or position + header.size > self.size:
                return False
            validate_batch(self.log.read(position, header.size))
        except InvalidBatchError:
            return False
        return True

    def _scan_tail(self, *, validate: bool) -> TailProblem | None:
        """Rebuild next_offset, max timestamp and index entries after the last entry."""
        slot = len(self.index)
        if slot:
            offset, position = self.index.entry(slot - 1)
            self.max_timestamp = self.time_index.entry(slot - 1)[0]
            indexed = position
        else:
            offset, position, indexed = self.base_offset, 0, -1
            self.max_timestamp = NO_TIMESTAMP
        self.next_offset = offset
        self._since_index = 0
        file_size = self.log.size()
        while position < file_size:
            problem = self._check_batch(position, offset, file_size, validate=validate)
            if isinstance(problem, TailProblem):
                self.size = position
                return problem
            header = problem
            if position != indexed and self._since_index >= self._interval:
                self.index.append(offset=header.base_offset, position=position)
                self.time_index.append(timestamp=self.max_timestamp, offset=header.base_offset)
                self._since_index = 0
            elif position == indexed:
                self._since_index = 0
            self._since_index += header.size
            self.max_timestamp = max(self.max_timestamp, header.max_timestamp)
            position += header.size
            offset = self.next_offset = header.next_offset
        self.size = position
        return None

    def _check_batch(
        self, position: int, offset: int, file_size: int, *, validate: bool
    ) -> BatchHeader | TailProblem:
        try:
            header = self.header_at(position)
            if position + header.size > file_size:
                return TailProblem(position=position, offset=offset, reason="incomplete batch")
            if validate:
                validate_batch(self.log.read(position, header.size))
        except InvalidBatchError as error:
            return TailProblem(position=position, offset=offset, reason=error.reason)
        if header.base_offset != offset:
            return TailProblem(
                position=position,
                offset=offset,
                reason=f"base offset {header.base_offset}, expected {offset}",
            )
        return header

    # -- files --

    def sync_files(self, *, sync_log: bool, indexes: bool) -> None:
        """fsync the log (and the index files when asked); runs in the flush thread."""
        if sync_log:
            self.log.fsync()
        if indexes:
            self.index.file.fsync()
            self.time_index.file.fsync()

    def close(self) -> None:
        for file in (self.log, self.index.file, self.time_index.file):
            file.close()

    def delete(self) -> None:
        self.close()
        for file in (self.log, self.index.file, self.time_index.file):
            self._storage.delete(file.path)
