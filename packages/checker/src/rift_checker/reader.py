"""Streaming history reader.

:class:`HistoryReader` reads the header eagerly and the events lazily: iterating
it yields each operation as an :class:`~rift_checker.history.Op` when its completion
line is read (so in completion order; invokes still open at the end come last, as
ops without a completion) and each observation as an
:class:`~rift_checker.history.Event`. Memory stays proportional to the number of
open operations, not to the file.

Only the envelope and pairing rules are checked here; what a ``send`` or ``poll``
value must contain is checked by :func:`rift_checker.check_history`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from rift_checker._jsonl import iter_pairs, parse_header
from rift_checker.errors import InvalidHistory
from rift_checker.history import Event, Op

__all__ = ["HistorySource", "HistoryReader", "fetch_ops"]

#: A path to a history file, an open text stream, or the file's lines.
HistorySource = str | Path | IO[str] | Iterable[str]


def _event(d: dict[str, Any]) -> Event:
    return Event(
        index=d["index"],
        time=d["time"],
        type=d["type"],
        f=d["f"],
        process=d.get("process"),
        node=d.get("node"),
        value=d.get("value"),
        error=d.get("error"),
    )


class HistoryReader:
    """Iterate a history's operations and observations; see the module docstring."""

    def __init__(self, source: HistorySource) -> None:
        self.path: str | None = None
        self._file: IO[str] | None = None
        if isinstance(source, (str, Path)):
            self.path = str(source)
            try:
                self._file = open(source, encoding="utf-8")  # noqa: SIM115
            except OSError as e:
                raise InvalidHistory(f"cannot read history: {e.strerror}", path=self.path) from None
            self._lines: Iterator[str] = iter(self._file)
        else:
            self._lines = iter(source)
        try:
            first = next(self._lines, None)
        except UnicodeDecodeError:
            self.close()
            raise InvalidHistory("not UTF-8 text", line=1, path=self.path) from None
        try:
            self.header: dict[str, Any] = parse_header(first, path=self.path)
        except InvalidHistory:
            self.close()
            raise
        self._consumed = False

    def pairs(self) -> Iterator[tuple[dict[str, Any] | None, dict[str, Any] | None]]:
        """Raw ``(invoke, completion)`` / ``(None, observation)`` dicts (the fast path)."""
        if self._consumed:
            raise ValueError("a HistoryReader can be iterated only once")
        self._consumed = True
        try:
            yield from iter_pairs(self._lines, path=self.path)
        except UnicodeDecodeError:
            raise InvalidHistory("not UTF-8 text", path=self.path) from None

    def __iter__(self) -> Iterator[Op | Event]:
        for inv, done in self.pairs():
            if inv is None:
                assert done is not None
                yield _event(done)
            else:
                yield Op(invoke=_event(inv), completion=None if done is None else _event(done))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def __enter__(self) -> HistoryReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def fetch_ops(source: HistorySource, ids: Iterable[int]) -> dict[int, Op | Event]:
    """Re-read a history and return the ops (by op id) and observations (by index) asked for.

    The checker keeps only op ids while it runs; this is how the proof of a case is
    turned back into full operations for display.
    """
    wanted = set(ids)
    found: dict[int, Op | Event] = {}
    if not wanted:
        return found
    with HistoryReader(source) as reader:
        for inv, done in reader.pairs():
            key = inv["index"] if inv is not None else done["index"]  # type: ignore[index]
            if key in wanted:
                if inv is None:
                    assert done is not None
                    found[key] = _event(done)
                else:
                    found[key] = Op(
                        invoke=_event(inv), completion=None if done is None else _event(done)
                    )
                if len(found) == len(wanted):
                    break
    return found
