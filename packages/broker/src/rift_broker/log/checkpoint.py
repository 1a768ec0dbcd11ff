"""Small text checkpoint files, replaced atomically (write temp, fsync, rename).

Format, as Kafka's checkpoint files: a version line (``0``), a count line, then one
entry per line. A file that does not parse reads as missing; callers fall back to
what the segments tell them.
"""

from __future__ import annotations

from rift_broker.storage import Storage

__all__ = ["read_checkpoint", "write_checkpoint", "TEMP_SUFFIX"]

_VERSION = "0"
TEMP_SUFFIX = ".tmp"


def write_checkpoint(storage: Storage, path: str, entries: list[str]) -> None:
    text = "\n".join([_VERSION, str(len(entries)), *entries]) + "\n"
    temp = path + TEMP_SUFFIX
    file = storage.open(temp)
    try:
        file.truncate(0)
        file.append(text.encode("ascii"))
        file.fsync()
    finally:
        file.close()
    storage.rename(temp, path)


def read_checkpoint(storage: Storage, path: str) -> list[str] | None:
    if not storage.exists(path):
        return None
    file = storage.open(path, create=False)
    try:
        raw = file.read(0, file.size())
    finally:
        file.close()
    try:
        lines = raw.decode("ascii").splitlines()
        if len(lines) < 2 or lines[0] != _VERSION or int(lines[1]) != len(lines) - 2:
            return None
    except (UnicodeDecodeError, ValueError):
        return None
    return lines[2:]


def read_offset_checkpoint(storage: Storage, path: str) -> int | None:
    """A checkpoint holding one integer, or None if missing or unreadable."""
    entries = read_checkpoint(storage, path)
    if entries is None or len(entries) != 1:
        return None
    try:
        return int(entries[0])
    except ValueError:
        return None
