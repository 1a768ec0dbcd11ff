"""Envelope validation and op pairing over decoded events, in batches.

This is the one place that states how events become operations: the public
reader (:mod:`rift_checker.reader`) pairs with :func:`pair_batches`, and the
checker's pass (:mod:`rift_checker._analyzer`) inlines the same tests, both
leaving the wording of every error to :func:`check_event`. It works on the structs
of :mod:`rift_checker._decode`, not on :class:`~rift_checker.history.Event` values,
because the checker's hot loop must not build an object per line. It checks
everything the schema says about the envelope of an event and about pairing; what
``value`` must look like for each ``f`` is the checker's business.

Items are ``(invoke, completion)`` pairs in completion order, where ``completion``
is ``None`` for an invoke still open at the end of the file (those come last, in
invoke order), and ``(None, observation)`` for observe events. They are handed
out a batch (a list) at a time, one per decoded block of lines, because a Python
generator step per operation costs as much as the pairing itself.

Errors keep line order: when a line breaks the schema, the pairs completed before
it are handed out first, and the error is raised only when the next batch is
asked for, so a consumer that finds a problem in an earlier operation reports
that one, exactly as if the file were processed one line at a time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from rift_checker._decode import Line
from rift_checker.errors import InvalidHistory
from rift_checker.history import COMPLETIONS, HEADER_KEY, HISTORY_VERSION, NEMESIS

__all__ = ["Pair", "parse_header", "check_event", "pair_batches"]

Pair = tuple[Line | None, Line | None]


def parse_header(line: str | bytes | None, *, path: str | None = None) -> dict[str, Any]:
    """Validate the first line; return the header object."""
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidHistory("not UTF-8 text", line=1, path=path) from None
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


def check_event(
    e: Line | ValueError,
    expected: int,
    last_time: int,
    open_ops: dict[Any, Line],
    retired: set[Any],
    *,
    path: str | None,
) -> None:
    """Every envelope and pairing check of the schema on one event, in a fixed order.

    Raises the first problem found, as :class:`InvalidHistory` naming the line;
    changes nothing. ``e`` is the event on line ``expected + 2`` (a decoded struct,
    or the ``ValueError`` that says why the line is no event), ``last_time`` the
    time of the line before, ``open_ops`` the invokes still open by process and
    ``retired`` the processes whose op ended info.

    This is the one statement of those rules. The hot loops (:func:`pair_batches`,
    :func:`rift_checker._analyzer.analyze`) test the same conditions in their
    cheapest form and call this whenever one fails, or for any line the typed
    decoder did not check, so that every error comes from here.
    """
    lineno = expected + 2
    if isinstance(e, UnicodeDecodeError):
        raise InvalidHistory("not UTF-8 text", line=lineno, path=path)
    if isinstance(e, ValueError):
        raise InvalidHistory(str(e), line=lineno, path=path)
    if e.index != expected:
        raise InvalidHistory(
            f"index is {e.index!r}, expected {expected} (events are numbered from 0 in line order)",
            line=lineno,
            path=path,
        )
    t = e.time
    if type(t) is not int or t < last_time:
        raise InvalidHistory(
            f"time must be an integer number of ns, never decreasing; got {t!r} after {last_time}",
            line=lineno,
            path=path,
        )
    f = e.f
    if type(f) is not str or not f:
        raise InvalidHistory("f must be a non-empty string", line=lineno, path=path)
    node = e.node
    if node is not None and type(node) is not str:
        raise InvalidHistory("node must be a string or null", line=lineno, path=path)
    typ = e.type
    p = e.process
    if typ == "invoke":
        if (type(p) is not int or p < 0) and p != NEMESIS:
            raise InvalidHistory(
                f'process must be an integer >= 0 or "{NEMESIS}", got {p!r}',
                line=lineno,
                path=path,
            )
        if p in open_ops:
            raise InvalidHistory(
                f"process {p} invokes {f!r} while its op at index {open_ops[p].index} is "
                "still open",
                line=lineno,
                path=path,
            )
        if p in retired:
            raise InvalidHistory(
                f"process {p} is reused after an op that ended info; use a fresh process",
                line=lineno,
                path=path,
            )
        if e.error is not None:
            raise InvalidHistory("an invoke has no error", line=lineno, path=path)
    elif typ in COMPLETIONS:
        inv = open_ops.get(p)
        if inv is None:
            raise InvalidHistory(
                f"{typ} completion for process {p!r} which has no open invoke",
                line=lineno,
                path=path,
            )
        if inv.f != f:
            raise InvalidHistory(
                f"completion f {f!r} does not match its invoke's f {inv.f!r} (index {inv.index})",
                line=lineno,
                path=path,
            )
        err = e.error
        if err is not None and type(err) is not str:
            raise InvalidHistory("error must be a string or null", line=lineno, path=path)
    elif typ != "observe":
        raise InvalidHistory(
            f"type must be invoke, ok, fail, info or observe, got {typ!r}",
            line=lineno,
            path=path,
        )


def pair_batches(
    batches: Iterable[list[Any]], *, typed: type[Line], path: str | None = None
) -> Iterator[list[Pair]]:
    """Check and pair decoded events (the header already consumed); see the module doc.

    ``batches`` hold, per line in file order, an event of class ``typed`` (its
    envelope types already checked by the decoder), a
    :class:`~rift_checker._decode.LooseLine`, or the ``ValueError`` that says why
    the line is no event.
    """
    open_ops: dict[Any, Line] = {}
    retired: set[Any] = set()  # processes whose op ended info: never reused
    last_time = -1
    expected = 0
    for batch in batches:
        out: list[Pair] = []
        append = out.append
        try:
            for e in batch:
                if type(e) is not typed:
                    check_event(e, expected, last_time, open_ops, retired, path=path)
                t = e.time
                if e.index != expected or t < last_time or not e.f:
                    check_event(e, expected, last_time, open_ops, retired, path=path)
                typ = e.type
                p = e.process
                if typ == "invoke":
                    if (
                        ((type(p) is not int or p < 0) and p != NEMESIS)
                        or p in open_ops
                        or p in retired
                        or e.error is not None
                    ):
                        check_event(e, expected, last_time, open_ops, retired, path=path)
                    open_ops[p] = e
                elif typ == "observe":
                    append((None, e))
                else:
                    inv = open_ops.pop(p, None)
                    if inv is None or inv.f != e.f:
                        if inv is not None:
                            open_ops[p] = inv  # as it was, for the error message
                        check_event(e, expected, last_time, open_ops, retired, path=path)
                    assert inv is not None
                    if typ == "info" and p != NEMESIS:  # the nemesis is one actor, never checked
                        retired.add(p)
                    append((inv, e))
                last_time = t
                expected += 1
        except InvalidHistory:
            if out:
                yield out  # the ops completed before the bad line come first
            raise
        if out:
            yield out
    if open_ops:
        yield [(inv, None) for inv in sorted(open_ops.values(), key=lambda e: e.index)]
