"""The durable home of one node's Raft state: term and vote, log, snapshot.

Layout, in the node's metadata directory:

- ``quorum-state``: the hard state (term, vote) as JSON. Replaced atomically
  (write a temporary file, fsync it, rename over the old one; the rename is made
  durable by the storage), so a crash leaves the old or the new state, never a mix.
  It is the *epoch store*: a save that would move the term back or change a vote
  within a term raises :class:`HardStateRegression` instead of writing.
- ``raft.log``: entries as frames ``[length u32][crc32c u32][payload]``, payload
  ``[term u64][index u64][command]``. Appended, fsynced once per ``persist``. A
  conflicting tail is cut by truncating the file at the first replaced entry. At
  load a torn or corrupt last frame (a crash in the middle of an append) is cut off;
  it was never fsynced, so no message depended on it.
- ``snapshot``: ``[index u64][term u64][crc32c u32][data]``, replaced atomically.
  After a snapshot the log file is rewritten without the entries it covers.

``persist`` performs one ``Ready``'s persist step in the order the Ready requires:
snapshot, entries (then fsync), hard state. Only then may the driver send.
"""

from __future__ import annotations

import json
import posixpath
import struct

import crc32c

from rift_broker.raft import (
    Entry,
    HardState,
    PersistentState,
    Ready,
    Snapshot,
    check_hard_state,
)
from rift_broker.storage import Storage, StorageFile

_FRAME = struct.Struct(">II")
_ENTRY = struct.Struct(">QQ")
_SNAP = struct.Struct(">QQI")


class FileRaftStorage:
    """A ``RaftStorage`` on a :class:`~rift_broker.storage.Storage`."""

    def __init__(self, *, storage: Storage, directory: str) -> None:
        self._storage = storage
        self._dir = directory
        storage.make_dirs(directory)
        self._state_path = posixpath.join(directory, "quorum-state")
        self._log_path = posixpath.join(directory, "raft.log")
        self._snap_path = posixpath.join(directory, "snapshot")
        self.hard_state = self._load_hard_state()
        self.snapshot = self._load_snapshot()
        self._log: StorageFile = storage.open(self._log_path)
        self._entries: list[Entry] = []
        self._positions: list[int] = []  # file position of each entry's frame
        self._load_log()
        self.hard_state_writes = 0

    # -- RaftStorage ------------------------------------------------------------

    def load(self) -> PersistentState:
        return PersistentState(
            hard_state=self.hard_state, snapshot=self.snapshot, entries=tuple(self._entries)
        )

    def persist(self, ready: Ready) -> None:
        if ready.snapshot is not None:
            self._write_snapshot(ready.snapshot)
            self._rewrite_log([])
        if ready.entries:
            first = ready.entries[0].index
            keep = first - self._first_index()
            if keep < 0 or keep > len(self._entries):
                raise ValueError(
                    f"entries start at {first}, the stored log holds "
                    f"{self._first_index()}..{self._first_index() + len(self._entries) - 1}"
                )
            if keep < len(self._entries):
                self._log.truncate(self._positions[keep])
                del self._entries[keep:]
                del self._positions[keep:]
            for entry in ready.entries:
                self._positions.append(self._log.append(_frame(entry)))
                self._entries.append(entry)
            self._log.fsync()
        if ready.hard_state is not None and ready.hard_state != self.hard_state:
            self._save_hard_state(ready.hard_state)

    def save_snapshot(self, snapshot: Snapshot) -> None:
        if self.snapshot is not None and snapshot.index < self.snapshot.index:
            return
        self._write_snapshot(snapshot)
        self._rewrite_log([e for e in self._entries if e.index > snapshot.index])

    def close(self) -> None:
        self._log.close()

    # -- internals --------------------------------------------------------------

    def _first_index(self) -> int:
        if self._entries:
            return self._entries[0].index
        return (self.snapshot.index if self.snapshot is not None else 0) + 1

    def _load_hard_state(self) -> HardState:
        if not self._storage.exists(self._state_path):
            return HardState()
        f = self._storage.open(self._state_path, create=False)
        try:
            raw = json.loads(f.read(0, f.size()))
        finally:
            f.close()
        return HardState(term=int(raw["term"]), voted_for=raw["voted_for"])

    def _save_hard_state(self, state: HardState) -> None:
        check_hard_state(self.hard_state, state)
        payload = json.dumps({"term": state.term, "voted_for": state.voted_for}).encode()
        self._replace(self._state_path, payload)
        self.hard_state = state
        self.hard_state_writes += 1

    def _replace(self, path: str, payload: bytes) -> None:
        tmp = path + ".tmp"
        if self._storage.exists(tmp):
            self._storage.delete(tmp)
        f = self._storage.open(tmp)
        try:
            f.append(payload)
            f.fsync()
        finally:
            f.close()
        self._storage.rename(tmp, path)

    def _load_snapshot(self) -> Snapshot | None:
        if not self._storage.exists(self._snap_path):
            return None
        f = self._storage.open(self._snap_path, create=False)
        try:
            raw = f.read(0, f.size())
        finally:
            f.close()
        index, term, crc = _SNAP.unpack_from(raw)
        data = raw[_SNAP.size :]
        if crc32c.crc32c(data) != crc:
            raise ValueError(f"{self._snap_path}: snapshot checksum mismatch")
        return Snapshot(index=index, term=term, data=data)

    def _write_snapshot(self, snapshot: Snapshot) -> None:
        header = _SNAP.pack(snapshot.index, snapshot.term, crc32c.crc32c(snapshot.data))
        self._replace(self._snap_path, header + snapshot.data)
        self.snapshot = snapshot

    def _load_log(self) -> None:
        size = self._log.size()
        data = self._log.read(0, size)
        pos = 0
        floor = self.snapshot.index if self.snapshot is not None else 0
        while pos + _FRAME.size <= size:
            length, crc = _FRAME.unpack_from(data, pos)
            end = pos + _FRAME.size + length
            payload = data[pos + _FRAME.size : end]
            if end > size or length < _ENTRY.size or crc32c.crc32c(payload) != crc:
                break  # torn or corrupt tail: never fsynced, never depended on
            term, index = _ENTRY.unpack_from(payload)
            entry = Entry(term=term, index=index, command=bytes(payload[_ENTRY.size :]))
            if index > floor and (not self._entries or index == self._entries[-1].index + 1):
                self._entries.append(entry)
                self._positions.append(pos)
            pos = end
        if pos < size:
            self._log.truncate(pos)
            self._log.fsync()

    def _rewrite_log(self, entries: list[Entry]) -> None:
        tmp = self._log_path + ".tmp"
        if self._storage.exists(tmp):
            self._storage.delete(tmp)
        f = self._storage.open(tmp)
        positions = [f.append(_frame(e)) for e in entries]
        f.fsync()
        f.close()
        self._log.close()
        self._storage.rename(tmp, self._log_path)
        self._log = self._storage.open(self._log_path)
        self._entries = list(entries)
        self._positions = positions


def _frame(entry: Entry) -> bytes:
    payload = _ENTRY.pack(entry.term, entry.index) + entry.command
    return _FRAME.pack(len(payload), crc32c.crc32c(payload)) + payload
