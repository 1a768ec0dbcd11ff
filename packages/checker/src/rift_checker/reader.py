"""Streaming history reader.

:class:`HistoryReader` reads the header eagerly and the events lazily: iterating
it yields each operation as an :class:`~rift_checker.history.Op` when its completion
line is read (so in completion order; invokes still open at the end come last, as
ops without a completion) and each observation as an
:class:`~rift_checker.history.Event`. Memory stays proportional to the number of
open operations and one block of the file, not to the file. A file is read as
bytes in blocks and decoded by msgspec, with Python's json module as the judge of
any line msgspec refuses (see :mod:`rift_checker._decode`).

Only the envelope and pairing rules are checked here; what a ``send`` or ``poll``
value must contain is checked by :func:`rift_checker.check_history`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import msgspec

from rift_checker._decode import (
    Line,
    ModelLine,
    decode_block,
    decode_lines,
    read_blocks,
    split_header,
)
from rift_checker._jsonl import Pair, pair_batches, parse_header
from rift_checker.errors import InvalidHistory
from rift_checker.history import Event, Op

__all__ = ["HistorySource", "HistoryReader", "fetch_ops"]

#: A path to a history file, an open text stream, or the file's lines.
HistorySource = str | Path | IO[str] | Iterable[str]

_PLAIN = msgspec.json.Decoder(Line)
_MODEL = msgspec.json.Decoder(ModelLine)

#: Lines of a text source decoded per batch.
_LINES_PER_BATCH = 4096


def _event(e: Line) -> Event:
    return Event(
        index=e.index,
        time=e.time,
        type=e.type,
        f=e.f,
        process=e.process,
        node=e.node,
        value=e.value,
        error=e.error,
    )


def _text_batches(
    lines: Iterator[str], decoder: msgspec.json.Decoder[Any]
) -> Iterator[list[Line | ValueError]]:
    while chunk := list(islice(lines, _LINES_PER_BATCH)):
        yield decode_lines(chunk, decoder)


class HistoryReader:
    """Iterate a history's operations and observations; see the module docstring."""

    def __init__(
        self, source: HistorySource, *, on_read: Callable[[int], object] | None = None
    ) -> None:
        """``on_read`` is told how many bytes each read of a history file took (for a
        progress display; a text stream or lines are not reported)."""
        self.path: str | None = None
        self._file: IO[bytes] | None = None
        self._blocks: Iterator[bytes] | None = None
        self._lines: Iterator[str] | None = None
        first: bytes | str | None
        if isinstance(source, (str, Path)):
            # A file is read as bytes, a block of lines at a time (see rift_checker._decode).
            self.path = str(source)
            try:
                self._file = open(source, "rb")  # noqa: SIM115
                first, self._blocks = split_header(read_blocks(self._file, on_read=on_read))
            except OSError as e:
                self.close()
                raise InvalidHistory(f"cannot read history: {e.strerror}", path=self.path) from None
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

    def line_batches(self, *, model: bool = False) -> Iterator[list[Line | ValueError]]:
        """The events after the header, decoded, a block of lines at a time; unchecked.

        Each item is a ``rift_checker._decode.Line`` (``ModelLine`` with ``model``,
        whose values that fit the log model are decoded as ``Value`` structs, keys
        the model ignores dropped), a ``LooseLine`` where the typed decoder refused
        the line, or the ``ValueError`` that says why the line is no event. The
        checker consumes these; :meth:`pair_batches` checks and pairs them.
        """
        if self._consumed:
            raise ValueError("a HistoryReader can be iterated only once")
        self._consumed = True
        decoder = _MODEL if model else _PLAIN
        batches: Iterator[list[Line | ValueError]]
        if self._blocks is not None:
            batches = (decode_block(block, decoder) for block in self._blocks)
        else:
            assert self._lines is not None
            batches = _text_batches(self._lines, decoder)
        try:
            yield from batches
        except UnicodeDecodeError:  # from a text stream opened by the caller
            raise InvalidHistory("not UTF-8 text", path=self.path) from None
        except OSError as e:
            raise InvalidHistory(f"cannot read history: {e.strerror}", path=self.path) from None

    def pair_batches(self) -> Iterator[list[Pair]]:
        """The items of :meth:`pairs`, a list at a time."""
        return pair_batches(self.line_batches(), typed=Line, path=self.path)

    def pairs(self) -> Iterator[Pair]:
        """Raw ``(invoke, completion)`` / ``(None, observation)`` events, as decoded structs.

        Each has the attributes of :class:`~rift_checker.history.Event`; ``value`` is
        the line's JSON value.
        """
        for batch in self.pair_batches():
            yield from batch

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
            e = inv if inv is not None else done
            assert e is not None
            key = e.index
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
