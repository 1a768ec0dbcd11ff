"""Turning the bytes of a history into event values, fast, with the json module's answers.

Theory of operation. Decoding is most of the cost of a check, so events are decoded
by msgspec into typed structs: :class:`Line` types the envelope (the fields every
event has) and leaves ``value`` generic, for :class:`~rift_checker.reader.HistoryReader`;
:class:`ModelLine` also types ``value`` as :class:`Value`, the keys of the log model
(HISTORY.md) the checker reads, so that its types and ranges are checked in C and
the checker's hot loop only reads attributes.

The typed decoders are a fast path, never a judge. A line that they refuse
(a wrong type, a value of an unexpected shape, JSON that msgspec does not take but
Python's json module does, such as ``NaN`` or a lone surrogate escape) is decoded
again by the json module into a :class:`LooseLine` whose fields are whatever the
line held, unchecked; the envelope checks (:mod:`rift_checker._jsonl`) and the
value checks (:mod:`rift_checker._analyzer`) then treat it exactly as the json
module's dict was always treated, error messages included. So the typed path only
decides how fast a valid line is read, never whether a line is valid.

A file is read in binary blocks of whole lines, and each line is decoded on its
own (a block at a time by one ``map``, so without a Python step per line), just as
a text file iterated line by line would be. Line endings follow Python's text
mode: ``\\r\\n`` and a lone ``\\r`` end a line too. A block is checked to be UTF-8
before it is decoded (a test for ASCII, in practice), because msgspec does not look
at the bytes of a string it skips; a block that is not is decoded line by line, the
bad line standing for a "not UTF-8 text" error.
"""

from __future__ import annotations

import json
import json.scanner
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

__all__ = [
    "Line",
    "ModelLine",
    "LooseLine",
    "Value",
    "Record",
    "UNSET",
    "BLOCK_SIZE",
    "read_blocks",
    "split_header",
    "decode_block",
    "decode_lines",
    "Mixed",
    "plain",
]

#: Bytes read from a history file at a time (whole lines are carried over).
BLOCK_SIZE = 1 << 16

NonNegative = Annotated[int, Meta(ge=0)]
#: Decoded as a Literal, an event type is one shared string object, quick to compare.
EventType = Literal["invoke", "ok", "fail", "info", "observe"]
#: The ``f`` of client ops and observations (rift_checker.history's CLIENT_FS and
#: OBSERVATION_FS; a test holds them equal).
ModelF = Literal[
    "send", "poll", "final-read", "assign", "subscribe", "commit", "leader", "high-watermark"
]
#: The process of nemesis ops (rift_checker.history's NEMESIS; a test holds them equal).
NemesisProcess = Literal["nemesis"]
#: One ``[offset, value]`` record of a read.
Record = tuple[NonNegative, int | str]


class Value(Struct, gc=False):
    """The keys of an event value that the log model gives a meaning (HISTORY.md).

    Other keys are dropped: no check reads them. ``topic`` and ``value`` are
    :data:`UNSET` when absent, because a send's ok value may leave them out, which
    is not the same as a null there; for every other key absent and null mean the
    same to the checks, so they are ``None``. A value of an unexpected shape does
    not decode into this type at all (its line becomes a :class:`LooseLine`).
    """

    # In the order the writer puts the keys (msgspec looks for the next field first).
    topic: str | UnsetType = UNSET
    partition: NonNegative | None = None
    offset: NonNegative | None = None
    value: int | str | UnsetType = UNSET
    epoch: int | None = None
    node: str | None = None
    records: dict[str, list[Record]] | None = None
    assigned: dict[str, NonNegative] | None = None
    offsets: dict[str, NonNegative] | None = None
    log_start: dict[str, NonNegative] | None = msgspec.field(default=None, name="log-start")


class Line(Struct, gc=False, kw_only=True):
    """One event with its envelope types checked; ``value`` is the decoded JSON.

    The fields are in the order the writer puts the keys: msgspec matches each key
    against the field after the last one first, so a line in that order costs one
    comparison per key.
    """

    index: int
    time: int
    type: EventType
    process: int | str | None = None
    node: str | None = None
    f: str
    value: Any = None
    error: str | None = None


class ModelLine(Line, gc=False, kw_only=True):
    """A :class:`Line` of the log model: ``value`` fits :class:`Value` (or is null),
    ``f`` is one the model knows (:data:`ModelF`).

    A nemesis op's line, whose ``f`` may be anything, is refused and read as a
    :class:`LooseLine`; with ``f`` decoded as a Literal, every line's ``f`` is one
    shared string, so it takes no allocation and compares by identity. A process
    is an int >= 0, the nemesis or null (only invokes must have one).
    """

    process: NonNegative | NemesisProcess | None = None
    f: ModelF
    value: Value | None = None


class LooseLine(Line, gc=False):
    """An event decoded by the json module: every field as the line had it, unchecked."""


_object_lines: Callable[[bytes], int] | None
try:  # the checker's native core, where a C compiler built it (see _native.c)
    from rift_checker._native import object_lines as _object_lines
except ImportError:  # pragma: no cover - built without a compiler: split every block
    _object_lines = None

# The C scanner behind json.loads, called directly: it skips two layers of Python
# wrappers. Only lines the typed decoders refuse come here.
_scan: Any = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


def _loads(raw: str) -> Any:
    try:
        value, end = _scan(raw, 0)
    except StopIteration:
        return json.loads(raw)  # raises the ValueError with the usual message
    if end != len(raw) and raw[end:].strip():
        return json.loads(raw)
    return value


def _loose(raw: bytes | str) -> LooseLine | ValueError:
    """The json module's reading of one line, or the error that says why it has none."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        return exc
    try:
        e = _loads(text)
    except ValueError as exc:
        if not text.strip():
            return ValueError("blank line")
        return ValueError(f"not JSON ({exc})")
    if type(e) is not dict:
        return ValueError("an event must be a JSON object")
    get: Any = e.get  # the fields are whatever the line held, checked later
    return LooseLine(
        index=get("index"),
        time=get("time"),
        type=get("type"),
        f=get("f"),
        process=get("process"),
        node=get("node"),
        value=get("value"),
        error=get("error"),
    )


class Mixed(list[Any]):
    """A batch of decoded lines that may hold others than the decoder's type.

    Batches of the fast path are plain lists, every item of the decoder's type, so
    a consumer can skip the per-line type test for them.
    """


def decode_lines(
    lines: Iterable[bytes | str], decoder: msgspec.json.Decoder[Any], *, utf8: bool = True
) -> list[Line | ValueError]:
    """Decode lines one by one: typed where the decoder takes them, else as LooseLines.

    A line that is not a JSON object becomes the ``ValueError`` to report for it, so
    the caller raises it in line order, after whatever the lines before it raise.
    ``utf8=False`` says the lines are bytes not yet known to be UTF-8: each is checked
    first, since msgspec does not check the bytes of strings it skips (unknown keys).
    """
    out: list[Line | ValueError] = Mixed()
    append = out.append
    decode = decoder.decode
    for raw in lines:
        if not utf8 and isinstance(raw, bytes):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                append(exc)
                continue
        try:
            append(decode(raw))
        except ValueError:  # msgspec.DecodeError and UnicodeDecodeError are ValueErrors
            append(_loose(raw))
    return out


def decode_block(block: bytes, decoder: msgspec.json.Decoder[Any]) -> list[Line | ValueError]:
    """Decode a block of whole lines, each ending with a newline; see the module doc."""
    ascii_ = block.isascii()  # ASCII is UTF-8; anything else is checked below, once
    if ascii_ and _object_lines is not None and (n := _object_lines(block)) >= 0:
        # Lines of one object each, by their shape: decoded in one call, without
        # splitting the block, when the decoder finds as many values as lines (see
        # _native.object_lines for why each line then holds exactly one).
        try:
            out = decoder.decode_lines(block)
        except ValueError:  # some line needs a closer look: line by line
            return decode_lines(block.split(b"\n")[:-1], decoder)
        if len(out) == n:
            return out
    lines = block.split(b"\n")
    lines.pop()  # the empty piece after the last newline
    if not ascii_:
        try:
            block.decode("utf-8")
        except UnicodeDecodeError:
            return decode_lines(lines, decoder, utf8=False)
    try:
        return list(map(decoder.decode, lines))
    except ValueError:  # some line needs the json module: decode the block line by line
        return decode_lines(lines, decoder)


def read_blocks(
    stream: IO[bytes], *, size: int | None = None, on_read: Callable[[int], object] | None = None
) -> Iterator[bytes]:
    """Blocks of whole lines of a binary stream, each ending with ``\\n``.

    Line ends are those of text mode: ``\\r\\n`` and ``\\r`` become ``\\n``. A last
    line without a newline gets one. A line longer than ``size`` spans reads and is
    joined once (never re-copied per read). ``on_read`` is told the size of every
    read (for a progress display).
    """
    size = BLOCK_SIZE if size is None else size
    pending: list[bytes] = []
    while True:
        block = stream.read(size)
        if not block:
            break
        if on_read is not None:
            on_read(len(block))
        if b"\r" in block:
            while block[-1:] == b"\r":  # so that a \r\n is never split
                more = stream.read(1)
                if not more:
                    break
                block += more
            block = block.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        cut = block.rfind(b"\n") + 1
        if not cut:
            pending.append(block)
            continue
        if pending:
            pending.append(block[:cut])
            yield b"".join(pending)
            pending = []
        else:
            yield block if cut == len(block) else block[:cut]
        if cut < len(block):
            pending.append(block[cut:])
    if pending:
        pending.append(b"\n")
        yield b"".join(pending)


def split_header(blocks: Iterator[bytes]) -> tuple[bytes | None, Iterator[bytes]]:
    """The first line of the blocks (``None`` if there is none) and the blocks after it."""
    first = next(blocks, None)
    if first is None:
        return None, blocks
    cut = first.index(b"\n") + 1

    def rest() -> Iterator[bytes]:
        if cut < len(first):
            yield first[cut:]
        yield from blocks

    return first[:cut], rest()


def plain(value: Any) -> Any:
    """A :class:`Value` as the dict it was decoded from, keys the model ignores aside.

    For the rare value that the checker's fast path hands to its general path.
    """
    if type(value) is not Value:
        return value
    out: dict[str, Any] = {}
    for name in Value.__struct_fields__:
        v = getattr(value, name)
        if v is UNSET:
            continue
        if name == "records" and v is not None:
            v = {key: [list(r) for r in recs] for key, recs in v.items()}
        elif name in ("assigned", "offsets", "log_start") and v is None:
            continue  # absent: no other check reads these keys
        out["log-start" if name == "log_start" else name] = v
    return out
