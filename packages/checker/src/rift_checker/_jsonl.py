"""Streaming parse of a history file: envelope validation and op pairing.

This is the one place that turns lines into events, shared by the public reader
(:mod:`rift_checker.reader`) and the checker. It yields plain dicts, not
:class:`~rift_checker.history.Event` values, because the checker's hot loop must
not build an object per line. It checks everything the schema says about the
envelope of an event and about pairing; what ``value`` must look like for each
``f`` is the checker's business (:mod:`rift_checker._analyzer`).

Yielded items are ``(invoke, completion)`` pairs in completion order, where
``completion`` is ``None`` for an invoke still open at the end of the file (those
come last, in invoke order), and ``(None, observation)`` for observe events.
"""

from __future__ import annotations

import json
import json.scanner
from collections.abc import Iterable, Iterator
from typing import Any

from rift_checker.errors import InvalidHistory
from rift_checker.history import HEADER_KEY, HISTORY_VERSION, NEMESIS

__all__ = ["Pair", "parse_header", "iter_pairs"]

Pair = tuple[dict[str, Any] | None, dict[str, Any] | None]

_COMPLETION_TYPES = {"ok", "fail", "info"}


def parse_header(line: str | bytes | None, *, path: str | None = None) -> dict[str, Any]:
    """Validate the first line; return the header object."""
    if line is None or not line.strip():
        raise InvalidHistory("empty history: the first line must be the header", line=1, path=path)
    try:
        header = json.loads(line)
    except ValueError as e:
        raise InvalidHistory(f"header is not JSON ({e})", line=1, path=path) from None
    if not isinstance(header, dict) or HEADER_KEY not in header:
        raise InvalidHistory(
            f'the first line must be a header object like {{"{HEADER_KEY}": {HISTORY_VERSION}}}',
            line=1,
            path=path,
        )
    if header[HEADER_KEY] != HISTORY_VERSION:
        raise InvalidHistory(
            f"unsupported history version {header[HEADER_KEY]!r}; this checker reads "
            f"version {HISTORY_VERSION}",
            line=1,
            path=path,
        )
    return header


# The C scanner behind json.loads, called directly: it skips two layers of Python
# wrappers, which is a fifth of the parse time of a typical event line.
_scan: Any = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


def _loads(raw: str) -> Any:
    try:
        value, end = _scan(raw, 0)
    except StopIteration:
        return json.loads(raw)  # raises the ValueError with the usual message
    if end != len(raw) and raw[end:].strip():
        return json.loads(raw)
    return value


def iter_pairs(lines: Iterable[str], *, path: str | None = None) -> Iterator[Pair]:
    """Parse event lines (the header already consumed) into pairs; see the module doc."""
    loads = _loads
    open_ops: dict[Any, dict[str, Any]] = {}
    retired: set[Any] = set()  # processes whose op ended info: never reused
    last_time = -1
    for lineno, raw in enumerate(lines, start=2):
        expected = lineno - 2
        try:
            e = loads(raw)
        except ValueError as exc:
            if not raw.strip():
                raise InvalidHistory("blank line", line=lineno, path=path) from None
            raise InvalidHistory(f"not JSON ({exc})", line=lineno, path=path) from None
        if type(e) is not dict:
            raise InvalidHistory("an event must be a JSON object", line=lineno, path=path)
        if e.get("index") != expected:
            raise InvalidHistory(
                f"index is {e.get('index')!r}, expected {expected} (events are numbered "
                "from 0 in line order)",
                line=lineno,
                path=path,
            )
        t = e.get("time")
        if type(t) is not int or t < last_time:
            raise InvalidHistory(
                f"time must be an integer number of ns, never decreasing; got {t!r} "
                f"after {last_time}",
                line=lineno,
                path=path,
            )
        last_time = t
        f = e.get("f")
        if type(f) is not str or not f:
            raise InvalidHistory("f must be a non-empty string", line=lineno, path=path)
        node = e.get("node")
        if node is not None and type(node) is not str:
            raise InvalidHistory("node must be a string or null", line=lineno, path=path)
        typ = e.get("type")
        p = e.get("process")
        if typ == "invoke":
            if (type(p) is not int or p < 0) and p != NEMESIS:
                raise InvalidHistory(
                    f'process must be an integer >= 0 or "{NEMESIS}", got {p!r}',
                    line=lineno,
                    path=path,
                )
            if p in open_ops:
                raise InvalidHistory(
                    f"process {p} invokes {f!r} while its op at index "
                    f"{open_ops[p]['index']} is still open",
                    line=lineno,
                    path=path,
                )
            if p in retired:
                raise InvalidHistory(
                    f"process {p} is reused after an op that ended info; use a fresh process",
                    line=lineno,
                    path=path,
                )
            if e.get("error") is not None:
                raise InvalidHistory("an invoke has no error", line=lineno, path=path)
            open_ops[p] = e
        elif typ in _COMPLETION_TYPES:
            inv = open_ops.pop(p, None)
            if inv is None:
                raise InvalidHistory(
                    f"{typ} completion for process {p!r} which has no open invoke",
                    line=lineno,
                    path=path,
                )
            if inv["f"] != f:
                raise InvalidHistory(
                    f"completion f {f!r} does not match its invoke's f {inv['f']!r} "
                    f"(index {inv['index']})",
                    line=lineno,
                    path=path,
                )
            err = e.get("error")
            if err is not None and type(err) is not str:
                raise InvalidHistory("error must be a string or null", line=lineno, path=path)
            if typ == "info" and p != NEMESIS:  # the nemesis is one actor, never checked
                retired.add(p)
            yield inv, e
        elif typ == "observe":
            yield None, e
        else:
            raise InvalidHistory(
                f"type must be invoke, ok, fail, info or observe, got {typ!r}",
                line=lineno,
                path=path,
            )
    for inv in sorted(open_ops.values(), key=lambda d: d["index"]):
        yield inv, None
