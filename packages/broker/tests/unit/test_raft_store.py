"""FileRaftStorage keeps exactly what each persist made durable, across crashes."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rift_broker.cluster import FileRaftStorage
from rift_broker.raft import (
    Entry,
    HardState,
    HardStateRegression,
    MemoryRaftStorage,
    Ready,
    Snapshot,
)
from rift_broker.storage import MemoryStorage

DIR = "/data/__cluster_metadata"


def entries(first: int, n: int, term: int) -> tuple[Entry, ...]:
    return tuple(
        Entry(term=term, index=i, command=f"cmd-{i}-{term}".encode())
        for i in range(first, first + n)
    )


def test_round_trip_and_conflicting_tail_replaced() -> None:
    disk = MemoryStorage()
    store = FileRaftStorage(storage=disk, directory=DIR)
    store.persist(Ready(entries=entries(1, 5, 1), hard_state=HardState(term=1, voted_for=2)))
    store.persist(Ready(entries=entries(4, 3, 2), hard_state=HardState(term=2, voted_for=None)))
    disk.crash()
    state = FileRaftStorage(storage=disk, directory=DIR).load()
    assert state.hard_state == HardState(term=2, voted_for=None)
    assert [(e.index, e.term) for e in state.entries] == [
        (1, 1),
        (2, 1),
        (3, 1),
        (4, 2),
        (5, 2),
        (6, 2),
    ]


def test_vote_cannot_change_within_a_term_or_term_go_back() -> None:
    store = FileRaftStorage(storage=MemoryStorage(), directory=DIR)
    store.persist(Ready(hard_state=HardState(term=3, voted_for=1)))
    with pytest.raises(HardStateRegression):
        store.persist(Ready(hard_state=HardState(term=3, voted_for=2)))
    with pytest.raises(HardStateRegression):
        store.persist(Ready(hard_state=HardState(term=2, voted_for=None)))


def test_snapshot_compacts_the_log_and_survives_restart() -> None:
    disk = MemoryStorage()
    store = FileRaftStorage(storage=disk, directory=DIR)
    store.persist(Ready(entries=entries(1, 10, 1)))
    store.save_snapshot(Snapshot(index=6, term=1, data=b"image@6"))
    disk.crash()
    state = FileRaftStorage(storage=disk, directory=DIR).load()
    assert state.snapshot == Snapshot(index=6, term=1, data=b"image@6")
    assert [e.index for e in state.entries] == [7, 8, 9, 10]


def test_installed_snapshot_discards_the_whole_log() -> None:
    disk = MemoryStorage()
    store = FileRaftStorage(storage=disk, directory=DIR)
    store.persist(Ready(entries=entries(1, 3, 1)))
    store.persist(Ready(snapshot=Snapshot(index=20, term=4, data=b"s"), entries=entries(21, 2, 4)))
    state = FileRaftStorage(storage=disk, directory=DIR).load()
    assert state.snapshot is not None
    assert state.snapshot.index == 20
    assert [e.index for e in state.entries] == [21, 22]


@pytest.mark.parametrize("cut", range(1, 40))
def test_torn_last_frame_is_cut_at_load(cut: int) -> None:
    disk = MemoryStorage()
    store = FileRaftStorage(storage=disk, directory=DIR)
    store.persist(Ready(entries=entries(1, 3, 1)))
    full = disk.contents(f"{DIR}/raft.log")
    # A fourth entry whose append was cut `cut` bytes in by a crash.
    extra = FileRaftStorage(storage=MemoryStorage(), directory=DIR)
    extra.persist(Ready(entries=entries(1, 4, 1)))
    four = extra._storage.contents(f"{DIR}/raft.log")  # type: ignore[attr-defined]
    torn = four[: len(full) + min(cut, len(four) - len(full) - 1)]
    disk.replace_contents(f"{DIR}/raft.log", torn)
    reopened = FileRaftStorage(storage=disk, directory=DIR)
    assert [e.index for e in reopened.load().entries] == [1, 2, 3]
    reopened.persist(Ready(entries=entries(4, 1, 2)))
    assert [e.index for e in FileRaftStorage(storage=disk, directory=DIR).load().entries] == [
        1,
        2,
        3,
        4,
    ]


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_matches_the_in_memory_model_across_crashes(data: st.DataObject) -> None:
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    disk = MemoryStorage()
    store = FileRaftStorage(storage=disk, directory=DIR)
    model = MemoryRaftStorage()
    term, voted = 0, None
    for _ in range(data.draw(st.integers(1, 25))):
        action = data.draw(st.sampled_from(["append", "vote", "snapshot", "crash"]))
        last = model.load()
        first = (last.snapshot.index if last.snapshot else 0) + 1
        end = first + len(last.entries)
        if action == "append":
            start = data.draw(st.integers(max(first, end - 3), end))
            term = max(term, data.draw(st.integers(term, term + 2)))
            ready = Ready(entries=entries(start, data.draw(st.integers(1, 4)), term))
        elif action == "vote":
            term += 1
            voted = data.draw(st.sampled_from([None, 1, 2, 3]))
            ready = Ready(hard_state=HardState(term=term, voted_for=voted))
        elif action == "snapshot" and end > first:
            index = data.draw(st.integers(first, end - 1))
            snap = Snapshot(index=index, term=term, data=f"img{index}".encode())
            store.save_snapshot(snap)
            model.save_snapshot(snap)
            continue
        else:
            disk.crash(rng=rng)
            store = FileRaftStorage(storage=disk, directory=DIR)
            assert store.load() == model.load()
            continue
        store.persist(ready)
        model.persist(ready)
    disk.crash(rng=rng)
    assert FileRaftStorage(storage=disk, directory=DIR).load() == model.load()
