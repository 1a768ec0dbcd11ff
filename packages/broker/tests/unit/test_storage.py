"""The simulated disk: durability only through fsync, deterministic crashes and tears,
injected fsync failure, and the directory operations the log uses."""

from __future__ import annotations

import random

import pytest

from rift_broker.storage import MemoryStorage


def test_files_and_directories() -> None:
    storage = MemoryStorage()
    with pytest.raises(FileNotFoundError):
        storage.open("/d/a")
    storage.make_dirs("/d/e")
    assert storage.exists("/d")
    assert storage.exists("/d/e")
    file = storage.open("/d/a")
    assert file.append(b"hello") == 0
    assert file.append(b" world") == 5
    assert file.read(3, 100) == b"lo world"
    assert file.size() == 11
    file.truncate(4)
    assert file.read(0, 100) == b"hell"
    storage.rename("/d/a", "/d/b")
    assert storage.list_dir("/d") == ["b"]
    with pytest.raises(FileNotFoundError):
        storage.open("/d/a", create=False)
    storage.delete("/d/b")
    assert storage.list_dir("/d") == []
    with pytest.raises(FileNotFoundError):
        storage.delete("/d/b")


def test_crash_drops_unsynced_bytes() -> None:
    storage = MemoryStorage()
    storage.make_dirs("/d")
    a, b = storage.open("/d/a"), storage.open("/d/b")
    a.append(b"durable")
    a.fsync()
    a.append(b"-lost")
    b.append(b"lost too")
    assert storage.unsynced_bytes("/d/a") == 5
    storage.crash()
    assert storage.contents("/d/a") == b"durable"
    assert storage.contents("/d/b") == b""
    assert storage.fsync_count == 1


def test_crash_tears_the_last_write_deterministically() -> None:
    def torn(seed: int) -> bytes:
        storage = MemoryStorage()
        storage.make_dirs("/d")
        file = storage.open("/d/a")
        file.append(b"base")
        file.fsync()
        file.append(b"0123456789")
        storage.crash(rng=random.Random(seed))
        return storage.contents("/d/a")

    results = {torn(seed) for seed in range(30)}
    assert all(r.startswith(b"base") and b"base0123456789".startswith(r) for r in results)
    assert len(results) > 3
    assert torn(7) == torn(7)

    storage = MemoryStorage()
    storage.make_dirs("/d")
    file = storage.open("/d/a")
    file.append(b"xy")
    storage.crash(torn_bytes=1)
    assert storage.contents("/d/a") == b"x"


def test_a_write_after_other_unsynced_bytes_is_not_torn_into_a_hole() -> None:
    storage = MemoryStorage()
    storage.make_dirs("/d")
    file = storage.open("/d/a")
    file.append(b"first")
    file.append(b"second")
    storage.crash(torn_bytes=3)
    assert storage.contents("/d/a") == b""


def test_failing_fsync_makes_nothing_durable() -> None:
    storage = MemoryStorage(fail_fsync=True)
    storage.make_dirs("/d")
    file = storage.open("/d/a")
    file.append(b"data")
    with pytest.raises(OSError, match="simulated fsync failure"):
        file.fsync()
    storage.crash()
    assert storage.contents("/d/a") == b""
