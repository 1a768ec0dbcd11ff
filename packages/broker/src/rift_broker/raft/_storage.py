"""Storage interfaces of the Raft core, and the in-memory fakes that ship with it.

The core never touches a file: the driver persists what each ``Ready`` says, in
the order ``Ready`` documents, and hands the result back at restart as a
``PersistentState``. Two contracts matter for safety:

* the **epoch store** (term and vote) is monotonic: the term never decreases and
  within a term the vote is given at most once — ``check_hard_state`` states it
  and both fakes enforce it, so a driver bug shows up as an exception, not as two
  leaders in one term;
* everything in a ``Ready``'s persist step is durable (fsync) before any of its
  messages is sent.

``MemoryRaftStorage`` is what the deterministic tests and the simulator use: it
keeps exactly what was persisted, so "crash" means building a new node from
``load()``; anything still in a Ready that was never passed to ``persist`` is lost.
"""

from __future__ import annotations

from typing import Protocol

from rift_broker.errors import BrokerError
from rift_broker.raft._config import Ready
from rift_broker.raft._messages import Entry, HardState, PersistentState, Snapshot

__all__ = [
    "EpochStore",
    "HardStateRegression",
    "MemoryEpochStore",
    "MemoryRaftStorage",
    "RaftStorage",
    "check_hard_state",
]


class HardStateRegression(BrokerError, ValueError):
    """A store was asked to move the term back or to change a vote within a term."""


def check_hard_state(old: HardState, new: HardState) -> None:
    """Raise ``HardStateRegression`` unless ``old -> new`` is a legal transition."""
    if new.term < old.term:
        raise HardStateRegression(f"term would go back from {old.term} to {new.term}")
    if new.term == old.term and old.voted_for is not None and new.voted_for != old.voted_for:
        raise HardStateRegression(
            f"vote in term {old.term} would change from {old.voted_for} to {new.voted_for}"
        )


class EpochStore(Protocol):
    """The durable term and vote of one node.

    ``load`` returns what the last completed ``save`` stored (``HardState()`` if
    none). ``save`` returns only once the state is durable, and raises
    ``HardStateRegression`` for an illegal transition (see ``check_hard_state``).
    """

    def load(self) -> HardState: ...

    def save(self, state: HardState) -> None: ...


class RaftStorage(Protocol):
    """Everything a node persists: hard state, log entries, snapshot.

    ``persist`` performs a Ready's persist step durably (see ``Ready``);
    ``save_snapshot`` stores a snapshot the node returned from ``compact`` and may
    then drop entries up to its index; ``load`` returns the durable state.
    """

    def persist(self, ready: Ready) -> None: ...

    def save_snapshot(self, snapshot: Snapshot) -> None: ...

    def load(self) -> PersistentState: ...


class MemoryEpochStore:
    """An ``EpochStore`` in memory (every save is instantly durable)."""

    def __init__(self, state: HardState | None = None) -> None:
        self._state = state if state is not None else HardState()

    def load(self) -> HardState:
        return self._state

    def save(self, state: HardState) -> None:
        check_hard_state(self._state, state)
        self._state = state


class MemoryRaftStorage:
    """A ``RaftStorage`` in memory whose every persisted write survives a crash."""

    def __init__(self) -> None:
        self.epochs = MemoryEpochStore()
        self.snapshot: Snapshot | None = None
        self.entries: list[Entry] = []  # contiguous, after the snapshot
        self.hard_state_writes = 0

    def persist(self, ready: Ready) -> None:
        if ready.snapshot is not None:
            self.snapshot = ready.snapshot
            self.entries = []
        if ready.entries:
            first = ready.entries[0].index
            self.entries = [e for e in self.entries if e.index < first]
            expected = self._offset() + len(self.entries) + 1
            if first != expected:
                raise ValueError(f"entries start at {first}, the stored log ends before {expected}")
            self.entries.extend(ready.entries)
        if ready.hard_state is not None:
            self.epochs.save(ready.hard_state)
            self.hard_state_writes += 1

    def save_snapshot(self, snapshot: Snapshot) -> None:
        if self.snapshot is not None and snapshot.index < self.snapshot.index:
            return
        self.snapshot = snapshot
        self.entries = [e for e in self.entries if e.index > snapshot.index]

    def load(self) -> PersistentState:
        return PersistentState(
            hard_state=self.epochs.load(), snapshot=self.snapshot, entries=tuple(self.entries)
        )

    def _offset(self) -> int:
        if self.entries:
            return self.entries[0].index - 1
        return self.snapshot.index if self.snapshot is not None else 0
