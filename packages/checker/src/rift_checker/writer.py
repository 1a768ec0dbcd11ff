"""Append-only history writer.

The writer owns the index counter and the pairing rules, so whatever it writes is
a valid history envelope: it refuses a second invoke on a busy process, a completion
without an invoke, and any reuse of a process whose op ended ``info``. Lines are
written in a fixed key order with compact separators and flushed every
``flush_every`` lines (default: every line, so a crashed run keeps its history).

Time is an argument (virtual time in the simulator); when left out, the writer
reads ``time.monotonic_ns()``, and a time earlier than the previous line's is
raised to it, because the schema requires non-decreasing times.
"""

from __future__ import annotations

import json
import time as _time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from rift_checker.errors import CheckerError
from rift_checker.history import (
    FAIL,
    HEADER_KEY,
    HISTORY_VERSION,
    INFO,
    INVOKE,
    NEMESIS,
    OBSERVE,
    OK,
)

__all__ = ["HistoryWriter"]

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class HistoryWriter:
    """Writes a history file line by line. Use as a context manager, or call close()."""

    def __init__(
        self,
        target: str | Path | IO[str],
        *,
        metadata: dict[str, Any] | None = None,
        flush_every: int = 1,
    ) -> None:
        if flush_every < 1:
            raise ValueError("flush_every must be >= 1")
        if isinstance(target, (str, Path)):
            self._stream: IO[str] = open(target, "w", encoding="utf-8")  # noqa: SIM115
            self._owns = True
        else:
            self._stream = target
            self._owns = False
        meta = dict(metadata or {})
        if HEADER_KEY in meta:
            raise ValueError(f"metadata must not contain {HEADER_KEY!r}")
        self._flush_every = flush_every
        self._unflushed = 0
        self._index = 0
        self._last_time = 0
        self._open: dict[int | str, str] = {}
        self._retired: set[int | str] = set()
        self._line(_dumps({HEADER_KEY: HISTORY_VERSION, **meta}))

    @property
    def next_index(self) -> int:
        """The index the next event will get."""
        return self._index

    def invoke(
        self,
        *,
        process: int | str,
        f: str,
        value: Any = None,
        node: str | None = None,
        time: int | None = None,
    ) -> int:
        """Write an invoke event; return its index, which is the op's id."""
        if process in self._open:
            raise CheckerError(f"process {process!r} already has an open {self._open[process]!r}")
        if process in self._retired:
            raise CheckerError(f"process {process!r} ended in info and must not be reused")
        self._open[process] = f
        return self._event(INVOKE, process, node, f, value, None, time)

    def complete(
        self,
        *,
        process: int | str,
        type: str,
        value: Any = None,
        error: str | None = None,
        node: str | None = None,
        time: int | None = None,
    ) -> int:
        """Write the completion (``ok``/``fail``/``info``) of ``process``'s open op."""
        if type not in (OK, FAIL, INFO):
            raise ValueError(f"type must be ok, fail or info, not {type!r}")
        f = self._open.pop(process, None)
        if f is None:
            raise CheckerError(f"process {process!r} has no open op to complete")
        if type == INFO and process != NEMESIS:  # the nemesis is one actor, never checked
            self._retired.add(process)
        return self._event(type, process, node, f, value, error, time)

    def ok(
        self,
        *,
        process: int | str,
        value: Any = None,
        node: str | None = None,
        time: int | None = None,
    ) -> int:
        return self.complete(process=process, type=OK, value=value, node=node, time=time)

    def fail(
        self,
        *,
        process: int | str,
        value: Any = None,
        error: str | None = None,
        node: str | None = None,
        time: int | None = None,
    ) -> int:
        return self.complete(
            process=process, type=FAIL, value=value, error=error, node=node, time=time
        )

    def info(
        self,
        *,
        process: int | str,
        value: Any = None,
        error: str | None = None,
        node: str | None = None,
        time: int | None = None,
    ) -> int:
        return self.complete(
            process=process, type=INFO, value=value, error=error, node=node, time=time
        )

    def observe(
        self, *, f: str, value: Any, node: str | None = None, time: int | None = None
    ) -> int:
        """Write an observation (``leader``, ``high-watermark``); return its index."""
        return self._event(OBSERVE, None, node, f, value, None, time)

    def flush(self) -> None:
        self._stream.flush()
        self._unflushed = 0

    def close(self) -> None:
        """Flush, and close the file if the writer opened it. Open ops stay open (info)."""
        if self._stream.closed:
            return
        self.flush()
        if self._owns:
            self._stream.close()

    def __enter__(self) -> HistoryWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _event(  # noqa: PLR0917 - private, called from four places in this class
        self,
        type_: str,
        process: int | str | None,
        node: str | None,
        f: str,
        value: Any,
        error: str | None,
        time: int | None,
    ) -> int:
        t = _time.monotonic_ns() if time is None else time
        t = max(t, self._last_time)
        self._last_time = t
        index = self._index
        self._index += 1
        self._line(
            _dumps(
                {
                    "index": index,
                    "time": t,
                    "type": type_,
                    "process": process,
                    "node": node,
                    "f": f,
                    "value": value,
                    "error": error,
                }
            )
        )
        return index

    def _line(self, text: str) -> None:
        self._stream.write(text + "\n")
        self._unflushed += 1
        if self._unflushed >= self._flush_every:
            self.flush()
