"""One streaming pass over a history that builds the compact log state.

Theory of operation: the pass reads the decoded lines (:mod:`rift_checker._decode`)
a block at a time, checks and pairs them by the rules of :mod:`rift_checker._jsonl`
(inlined: at a million operations a generator step or a tuple per operation is a
visible share of the time), and sees each operation once, when it completes, when
it is folded into the state (:mod:`rift_checker._fold`). Nothing holds an operation
object after its completion: the state is keyed by value and offset and stores op
ids, the indexes of invoke events, so a proof can be fetched again from the file.

Each kind of operation has two ways in. The *fast path* takes ok sends and reads
whose values the typed decoder already shaped as
:class:`~rift_checker._decode.Value` and that pass a few cheap tests; it changes
nothing until it knows the operation is well formed. Everything else takes the
*general path* (``_fold.fold``), which validates the plain JSON value key by key
and then folds it in with the same code as the fast path. The fast path is an
optimisation of the general one, never a second opinion;
``tests/unit/test_decoding.py`` runs histories through both and compares.

The loop and the fast path exist twice. :meth:`_Pass.events` states them in
Python; the native core (``_native.c``, built where a C compiler is found at
install time) states them again in C, over the same Python state, without the
interpreter's cost per event, and calls ``_fold.fold`` and ``_fold.observe`` for
the rest. :func:`analyze` hands each batch to the core first; the core stops,
untouched, at the first event it cannot take exactly as :meth:`_Pass.events` would
(a line the typed decoder refused, any envelope or pairing error, a position beyond
64 bits), and :meth:`_Pass.events` takes that one. So the general path and every
error stay in Python, and without the core the pass is the same, only slower.
``tests/unit/test_decoding.py`` and ``tests/unit/test_anomalies.py`` check the two
against each other.

Times in the cycle check are event indexes: the file is written in real-time order,
so op A completed before op B was invoked exactly when A's completion index is
below B's id.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rift_checker._decode import UNSET, Line, ModelLine, Value
from rift_checker._fold import (
    acked,
    fold,
    fold_read,
    grow,
    observe,
    poll_went_back,
    send_went_back,
)
from rift_checker._jsonl import check_event
from rift_checker._state import LogState
from rift_checker.history import FINAL_READ, NEMESIS, POLL, SEND
from rift_checker.stats import Stats

__all__ = ["analyze"]

#: False makes the pass pure Python even where the native core is built (for the
#: tests and the benchmark that compare the two).
NATIVE = True


def analyze(batches: Iterable[list[Any]], state: LogState, stats: Stats) -> None:
    """Check, pair and fold every event; raise InvalidHistory at the first problem.

    ``batches`` are decoded lines (:mod:`rift_checker._decode`, ``ModelLine``
    where the typed decoder took the line). Envelope and pairing follow
    :mod:`rift_checker._jsonl` (the pass tests their rules in their cheapest form and
    lets :func:`~rift_checker._jsonl.check_event` word every error); each operation
    is folded in when its completion is read, invokes never completed at the end.

    With the native core built (``rift_checker._native``, see the module doc), it
    takes each batch first and stops at the first event it does not take;
    :meth:`_Pass.events` takes that one, and the core goes on after it.
    """
    run = _Pass(state, stats)
    native = _native_run if _native_run is not None and NATIVE else None
    for batch in batches:
        if not run.expected and batch:
            run.first = batch[0]
        typed = type(batch) is list  # else some lines were not typed (see _decode)
        if native is None:
            run.events(batch, typed)
            continue
        i = 0
        n = len(batch)
        while (i := native(run, batch, i)) < n:
            run.events(batch[i : i + 1], typed)
            i += 1
    run.close()


class _Pass:
    """The pass between two events: where it is in the file and which ops are open."""

    __slots__ = (
        "expected",
        "first",
        "last_done",
        "last_time",
        "native",
        "open_ops",
        "path",
        "retired",
        "state",
        "stats",
    )

    def __init__(self, state: LogState, stats: Stats) -> None:
        self.state = state
        self.stats = stats
        self.path = state.path
        self.open_ops: dict[Any, Line] = {}
        self.retired: set[Any] = set()  # processes whose op ended info: never reused
        self.last_time = -1
        # the time of the last completion the fast path folded in
        self.last_done: int | None = None
        self.expected = 0  # the index of the event on the current line
        self.first: Any = None  # the first event: its time is the earliest (never decreasing)
        self.native: Any = None  # the native core's view of the state, once it made one

    def events(self, batch: list[Any], typed: bool) -> None:
        """Check, pair and fold the events of ``batch``, which follow those before."""
        state = self.state
        stats = self.stats
        path = self.path
        latency = stats.latency
        lat_send = latency.get(SEND)
        lat_poll = latency.get(POLL)
        sent = state.sent
        tp_pairs = state.tp_pairs
        done_at = state.done_at
        capacity = len(done_at)
        open_ops = self.open_ops
        retired = self.retired
        last_time = self.last_time
        last_done = self.last_done
        expected = self.expected
        for e in batch:
            # Envelope and pairing (rift_checker._jsonl.pair_batches, inlined).
            if not typed and type(e) is not ModelLine:
                check_event(e, expected, last_time, open_ops, retired, path=path)
            # A ModelLine's types are checked, its f is one of the model's and its
            # process is an int >= 0, the nemesis or null (see rift_checker._decode).
            t = e.time
            if e.index != expected or t < last_time:
                check_event(e, expected, last_time, open_ops, retired, path=path)
            typ = e.type
            p = e.process
            if typ == "invoke":
                if p is None or p in open_ops or p in retired or e.error is not None:
                    check_event(e, expected, last_time, open_ops, retired, path=path)
                open_ops[p] = e
                last_time = t
                expected += 1
                continue
            if typ == "observe":
                last_time = t
                expected += 1
                observe(e, state, stats, path)
                continue
            f = e.f
            inv = open_ops.pop(p, None)
            if inv is None or inv.f != f:
                if inv is not None:
                    open_ops[p] = inv  # as it was, for the error message
                check_event(e, expected, last_time, open_ops, retired, path=path)
            assert inv is not None
            last_time = t
            expected += 1
            # The fast path: an ok send or poll of a client whose values the typed
            # decoder shaped. Everything else, and anything odd about these, goes
            # to fold (see the module doc).
            if typ != "ok" or type(p) is not int:
                if typ == "info" and p != NEMESIS:  # the nemesis is one actor, never checked
                    retired.add(p)
                fold(inv, e, typ, state, stats)
                continue
            op = inv.index
            dv = e.value
            if f == SEND:
                iv = inv.value
                if not (
                    type(iv) is Value
                    and type(dv) is Value
                    and (v := iv.value) is not UNSET
                    and (topic := iv.topic) is not UNSET
                    and topic
                    and "/" not in topic
                    and dv.partition is not None
                    and dv.offset is not None
                    and (dv.value is UNSET or dv.value == v)
                    and (dv.topic is UNSET or dv.topic == topic)
                    and sent.setdefault(v, op) == op  # last: it records the send
                ):
                    fold(inv, e, typ, state, stats)
                    continue
                if lat_send is None:
                    stats.op(f, typ, inv.time, t)
                    lat_send = latency[f]
                else:
                    lat_send.append(t - inv.time)
                tp = tp_pairs.get((topic, dv.partition))
                if tp is None:
                    tp = state.tp_of(topic, dv.partition)
                acked(state, p, tp, dv.offset, v, op, expected - 1)
            elif (
                f in (POLL, FINAL_READ)
                and type(dv) is Value
                and dv.records is not None
                and dv.assigned is None
                and dv.log_start is None
            ):
                if lat_poll is None or f != POLL:
                    stats.op(f, typ, inv.time, t)
                    lat_poll = latency.get(POLL)
                else:
                    lat_poll.append(t - inv.time)
                fold_read(state, p, op, dv.records, f == FINAL_READ, e, path)
            else:
                fold(inv, e, typ, state, stats)
                continue
            if op >= capacity:
                done_at = grow(state, op)
                capacity = len(done_at)
            done_at[op] = expected - 1
            last_done = t  # completions arrive in time order
        self.last_time = last_time
        self.last_done = last_done
        self.expected = expected

    def close(self) -> None:
        """Fold in the invokes never completed; settle the statistics."""
        for inv in sorted(self.open_ops.values(), key=lambda e: e.index):
            fold(inv, None, "info", self.state, self.stats)
        if self.expected:
            self.stats.seen(
                events=self.expected, first_time=self.first.time, last_time=self.last_done
            )


# The native core (``_native.c``), where a C compiler built it at install time. A
# core that does not fit this module (built from another version of it and not
# rebuilt) is left unused, like a missing one; tests/unit/test_native.py fails then.
_native_run: Any = None
try:
    from rift_checker import _native

    _native.setup(ModelLine, Value, UNSET, grow, send_went_back, poll_went_back, fold, observe)
    _native_run = _native.run
except (ImportError, TypeError):  # pragma: no cover - no compiler: the pure-Python pass
    pass
