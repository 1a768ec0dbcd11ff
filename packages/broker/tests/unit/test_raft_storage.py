"""The epoch store's monotonic contract, the memory storage's Ready semantics,
and the in-memory log's boundary arithmetic."""

from __future__ import annotations

import pytest

from rift_broker.errors import BrokerError
from rift_broker.raft import (
    Entry,
    HardState,
    HardStateRegression,
    MemoryEpochStore,
    MemoryRaftStorage,
    RaftLog,
    Ready,
    Snapshot,
    check_hard_state,
)


def entries(first: int, last: int, term: int = 1) -> tuple[Entry, ...]:
    return tuple(Entry(term=term, index=i, command=b"%d" % i) for i in range(first, last + 1))


@pytest.mark.parametrize(
    ("old", "new", "ok"),
    [
        (HardState(), HardState(term=1), True),
        (HardState(term=1), HardState(term=1, voted_for=2), True),
        (HardState(term=1, voted_for=2), HardState(term=1, voted_for=2), True),
        (HardState(term=1, voted_for=2), HardState(term=2), True),
        (HardState(term=2), HardState(term=1), False),  # term goes back
        (HardState(term=1, voted_for=2), HardState(term=1, voted_for=3), False),  # second vote
        (HardState(term=1, voted_for=2), HardState(term=1), False),  # vote forgotten
    ],
)
def test_hard_state_transitions(old: HardState, new: HardState, ok: bool) -> None:
    if ok:
        check_hard_state(old, new)
    else:
        with pytest.raises(HardStateRegression):
            check_hard_state(old, new)


def test_epoch_store_refuses_regressions_and_keeps_the_last_good_state() -> None:
    store = MemoryEpochStore()
    assert store.load() == HardState()
    store.save(HardState(term=3, voted_for=1))
    with pytest.raises(BrokerError, match="vote in term 3"):
        store.save(HardState(term=3, voted_for=2))
    assert store.load() == HardState(term=3, voted_for=1)


def test_memory_storage_applies_the_ready_contract() -> None:
    storage = MemoryRaftStorage()
    storage.persist(Ready(hard_state=HardState(term=1, voted_for=1), entries=entries(1, 5)))
    storage.persist(Ready(entries=entries(4, 4, term=2)))  # truncates 4..5, appends 4
    assert [(e.index, e.term) for e in storage.entries] == [(1, 1), (2, 1), (3, 1), (4, 2)]
    with pytest.raises(ValueError, match="start at 7"):
        storage.persist(Ready(entries=entries(7, 7)))
    storage.save_snapshot(Snapshot(index=2, term=1, data=b"s"))
    assert [e.index for e in storage.entries] == [3, 4]
    storage.save_snapshot(Snapshot(index=1, term=1, data=b"old"))  # never goes back
    assert storage.snapshot == Snapshot(index=2, term=1, data=b"s")
    installed = Snapshot(index=9, term=3, data=b"x")
    storage.persist(Ready(snapshot=installed, entries=entries(10, 11, 3)))
    state = storage.load()
    assert state.snapshot is not None
    assert state.snapshot.index == 9
    assert [e.index for e in state.entries] == [10, 11]
    assert state.hard_state == HardState(term=1, voted_for=1)
    assert storage.hard_state_writes == 1


def test_raft_log_boundaries() -> None:
    log = RaftLog(snapshot=Snapshot(index=3, term=2, data=b""), entries=entries(2, 6, term=2))
    assert (log.offset, log.last_index, log.last_term) == (3, 6, 2)
    assert log.term_at(3) == 2  # the snapshot boundary is still answerable
    assert log.term_at(2) is None
    assert log.term_at(7) is None
    log.append(Entry(term=3, index=7, command=b"x"))
    assert log.first_index_of_term(6, floor=0) == 4
    assert log.first_index_of_term(6, floor=4) == 5
    assert log.up_to_date(7, 3)
    assert not log.up_to_date(8, 2)
    assert log.up_to_date(8, 4)
    log.truncate_from(6)
    assert log.last_index == 5
    log.compact(5)
    assert (log.offset, log.last_index, log.term_at(5)) == (5, 5, 2)
    with pytest.raises(ValueError, match="not contiguous"):
        RaftLog(entries=(Entry(term=1, index=2, command=b""),))
