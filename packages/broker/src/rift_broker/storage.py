"""The storage interface the log reaches files through, a real one and a simulated disk.

:class:`OsStorage` is plain POSIX files. :class:`MemoryStorage` is the disk of the
deterministic simulator and of the unit tests: it keeps, for every file, what was
written and how much of it is durable, and :meth:`MemoryStorage.crash` throws away
what a power cut would.

The crash model of :class:`MemoryStorage`, kept deliberately simple:

- File data is durable only up to the last successful ``fsync`` of that file.
- Metadata (create, rename, delete, truncate) is durable as soon as the call returns
  (:class:`OsStorage` fsyncs the directory on create and rename to come close).
- A crash cuts every file back to its durable prefix. Optionally the most recent
  write, if unsynced and starting exactly where the durable prefix ends, survives
  torn: only its first ``n`` bytes reach the disk (``n`` given, or drawn from an
  injected ``random.Random``).
"""

from __future__ import annotations

import errno
import os
import posixpath
import random
import threading
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["Storage", "StorageFile", "OsStorage", "MemoryStorage"]

Data = bytes | bytearray | memoryview


class StorageFile(Protocol):
    """An open file that only grows at its end (or is truncated).

    Contract: ``append`` writes all of ``data`` at the current end and returns the
    position it was written at; written bytes are visible to ``read`` at once but
    durable only after ``fsync`` returns. ``read`` returns fewer bytes than asked at
    the end of the file. ``fsync`` raises ``OSError`` when the disk failed; the
    caller must then assume unsynced data is lost (never retry). ``append`` and
    ``fsync`` may run in different threads at the same time; nothing else may.
    """

    @property
    def path(self) -> str: ...

    def append(self, data: Data) -> int: ...

    def read(self, position: int, size: int) -> bytes: ...

    def size(self) -> int: ...

    def truncate(self, size: int) -> None: ...

    def fsync(self) -> None: ...

    def close(self) -> None: ...


class Storage(Protocol):
    """A directory tree of files.

    Contract: paths are strings joined with ``/``. ``open`` creates the file when
    ``create`` is true (``FileNotFoundError`` otherwise when missing). ``rename``
    atomically replaces ``dst`` and is durable on return. ``delete`` of a missing
    file raises ``FileNotFoundError``. ``list_dir`` returns the sorted names (not
    paths) of the files in a directory. ``make_dirs`` is ``mkdir -p``.
    """

    def open(self, path: str, *, create: bool = True) -> StorageFile: ...

    def exists(self, path: str) -> bool: ...

    def rename(self, src: str, dst: str) -> None: ...

    def delete(self, path: str) -> None: ...

    def list_dir(self, path: str) -> list[str]: ...

    def make_dirs(self, path: str) -> None: ...


# -- Real files -----------------------------------------------------------------


class _OsFile:
    def __init__(self, path: str, fd: int):
        self._path = path
        self._fd = fd
        self._size = os.fstat(fd).st_size

    @property
    def path(self) -> str:
        return self._path

    def append(self, data: Data) -> int:
        position = self._size
        view = memoryview(data)
        written = 0
        while written < len(view):
            written += os.pwrite(self._fd, view[written:], position + written)
        self._size += written
        return position

    def read(self, position: int, size: int) -> bytes:
        return os.pread(self._fd, size, position)

    def size(self) -> int:
        return self._size

    def truncate(self, size: int) -> None:
        os.ftruncate(self._fd, size)
        self._size = min(self._size, size)

    def fsync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _fsync_dir(path: str) -> None:
    fd = os.open(path or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class OsStorage:
    """Real files through ``os`` calls (pread/pwrite, fsync)."""

    def open(self, path: str, *, create: bool = True) -> StorageFile:
        flags = os.O_RDWR | getattr(os, "O_CLOEXEC", 0)
        existed = os.path.exists(path)
        if create:
            flags |= os.O_CREAT
        fd = os.open(path, flags, 0o644)
        if not existed:
            # Make the new name durable, or an fsynced file could vanish in a crash.
            _fsync_dir(os.path.dirname(path))
        return _OsFile(path, fd)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def rename(self, src: str, dst: str) -> None:
        os.replace(src, dst)
        _fsync_dir(os.path.dirname(dst))

    def delete(self, path: str) -> None:
        os.unlink(path)

    def list_dir(self, path: str) -> list[str]:
        return sorted(name for name in os.listdir(path) if os.path.isfile(os.path.join(path, name)))

    def make_dirs(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)


# -- The simulated disk ------------------------------------------------------------


@dataclass(slots=True, eq=False)
class _Inode:
    data: bytearray = field(default_factory=bytearray)
    synced: int = 0  # length of the durable prefix of ``data``


@dataclass(frozen=True, slots=True)
class _Write:
    inode: _Inode
    start: int
    data: bytes


class _MemoryFile:
    def __init__(self, storage: MemoryStorage, path: str, inode: _Inode):
        self._storage = storage
        self._path = path
        self._inode = inode
        self._closed = False

    @property
    def path(self) -> str:
        return self._path

    def _check(self) -> None:
        if self._closed:
            raise ValueError(f"{self._path} is closed")

    def append(self, data: Data) -> int:
        self._check()
        with self._storage._lock:
            position = len(self._inode.data)
            chunk = bytes(data)
            self._inode.data += chunk
            self._storage._last_write = _Write(self._inode, position, chunk)
            return position

    def read(self, position: int, size: int) -> bytes:
        self._check()
        with self._storage._lock:
            return bytes(self._inode.data[position : position + size])

    def size(self) -> int:
        return len(self._inode.data)

    def truncate(self, size: int) -> None:
        self._check()
        with self._storage._lock:
            del self._inode.data[size:]
            self._inode.synced = min(self._inode.synced, size)

    def fsync(self) -> None:
        self._check()
        with self._storage._lock:
            self._storage.fsync_count += 1
            if self._storage.fail_fsync:
                raise OSError(errno.EIO, "simulated fsync failure", self._path)
            self._inode.synced = len(self._inode.data)

    def close(self) -> None:
        self._closed = True


class MemoryStorage:
    """An in-memory disk that can lose unsynced writes; deterministic by construction.

    ``fail_fsync`` (settable at any time) makes every later ``fsync`` raise ``EIO``
    without making anything durable. ``fsync_count`` counts file fsync calls.
    """

    def __init__(self, *, fail_fsync: bool = False):
        self.fail_fsync = fail_fsync
        self.fsync_count = 0
        self._files: dict[str, _Inode] = {}
        self._dirs: set[str] = {"", "/", "."}
        self._last_write: _Write | None = None
        self._lock = threading.Lock()

    @staticmethod
    def _norm(path: str) -> str:
        return posixpath.normpath(path)

    def open(self, path: str, *, create: bool = True) -> StorageFile:
        key = self._norm(path)
        with self._lock:
            inode = self._files.get(key)
            if inode is None:
                if not create:
                    raise FileNotFoundError(errno.ENOENT, "no such file", path)
                if posixpath.dirname(key) not in self._dirs:
                    raise FileNotFoundError(errno.ENOENT, "no such directory", path)
                inode = self._files[key] = _Inode()
        return _MemoryFile(self, key, inode)

    def exists(self, path: str) -> bool:
        key = self._norm(path)
        return key in self._files or key in self._dirs

    def rename(self, src: str, dst: str) -> None:
        with self._lock:
            inode = self._files.pop(self._norm(src), None)
            if inode is None:
                raise FileNotFoundError(errno.ENOENT, "no such file", src)
            self._files[self._norm(dst)] = inode

    def delete(self, path: str) -> None:
        with self._lock:
            if self._files.pop(self._norm(path), None) is None:
                raise FileNotFoundError(errno.ENOENT, "no such file", path)

    def list_dir(self, path: str) -> list[str]:
        key = self._norm(path)
        if key not in self._dirs:
            raise FileNotFoundError(errno.ENOENT, "no such directory", path)
        return sorted(
            posixpath.basename(name) for name in self._files if posixpath.dirname(name) == key
        )

    def make_dirs(self, path: str) -> None:
        key = self._norm(path)
        while key not in self._dirs:
            self._dirs.add(key)
            key = posixpath.dirname(key)

    # -- fault injection and inspection (simulator, tests) --

    def crash(self, *, rng: random.Random | None = None, torn_bytes: int | None = None) -> None:
        """Lose every unsynced byte; maybe keep a torn prefix of the last write.

        ``torn_bytes`` keeps exactly that many bytes (clamped) of the last write;
        otherwise ``rng`` picks a count in ``[0, len(write))``; with neither, the last
        write is lost whole. Open files stay usable but see the post-crash contents;
        callers normally reopen everything.
        """
        with self._lock:
            last = self._last_write
            keep = 0
            if last is not None and last.start == last.inode.synced:
                if torn_bytes is not None:
                    keep = max(0, min(torn_bytes, len(last.data)))
                elif rng is not None:
                    keep = rng.randrange(len(last.data)) if last.data else 0
            for inode in self._files.values():
                del inode.data[inode.synced :]
            if keep and last is not None and any(i is last.inode for i in self._files.values()):
                last.inode.data += last.data[:keep]
                last.inode.synced = len(last.inode.data)
            self._last_write = None

    def contents(self, path: str) -> bytes:
        """Current (possibly unsynced) bytes of a file."""
        return bytes(self._files[self._norm(path)].data)

    def replace_contents(self, path: str, data: bytes) -> None:
        """Overwrite a file with ``data``, durably (to plant corruption in tests)."""
        inode = self._files.setdefault(self._norm(path), _Inode())
        inode.data = bytearray(data)
        inode.synced = len(data)

    def unsynced_bytes(self, path: str) -> int:
        inode = self._files[self._norm(path)]
        return len(inode.data) - inode.synced
