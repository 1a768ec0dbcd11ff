"""One streaming pass over a history that builds the compact log state.

Theory of operation: the pass reads the decoded lines (:mod:`rift_checker._decode`)
a block at a time, checks and pairs them by the rules of :mod:`rift_checker._jsonl`
(inlined: at a million operations a generator step or a tuple per operation is a
visible share of the time), and sees each operation once, when it completes. It
validates the operation's value against the log model and folds it into
per-partition maps. Nothing holds an operation object after its completion: the
state is keyed by value and offset and stores op ids, the indexes of invoke
events, so a proof can be fetched again from the file. Anomalies that a single
event can reveal (two values at one offset, a poll going backwards) become cases
at once; those that need the whole history (lost, unseen, skips, cycles) are
decided by :mod:`rift_checker._finish` and :mod:`rift_checker._cycles` from this
state.

Each kind of operation has two ways in. The *fast path* takes ok sends and reads
whose values the typed decoder already shaped as
:class:`~rift_checker._decode.Value` and that pass a few cheap tests; it changes
nothing until it knows the operation is well formed. Everything else takes the
*general path* (:func:`_fold`), which validates the plain JSON value key by key in
a fixed order (so the first problem is the one reported) and then folds it with
the same code as the fast path. The fast path is an optimisation of the general
one, never a second opinion; ``tests/unit/test_decoding.py`` runs histories
through both and compares.

The loop and the fast path exist twice. :meth:`_Pass.events` states them in
Python; the native core (``_native.c``, built where a C compiler is found at
install time) states them again in C, over the same Python state, without the
interpreter's cost per event, and calls :func:`_fold` and :func:`_observe` for the
rest. :func:`analyze` hands each batch to the core first; the core stops, untouched,
at the first event it cannot take exactly as :meth:`_Pass.events` would (a line the
typed decoder refused, any envelope or pairing error, a position beyond 64 bits),
and :meth:`_Pass.events` takes that one. So the general path and every error stay in
Python, and without the core the pass is the same, only slower.
``tests/unit/test_decoding.py`` and ``tests/unit/test_anomalies.py`` check the two
against each other.

Times in the cycle check are event indexes: the file is written in real-time order,
so op A completed before op B was invoked exactly when A's completion index is
below B's id.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable
from typing import Any

from rift_checker._decode import UNSET, Line, ModelLine, Value, plain
from rift_checker._jsonl import check_event
from rift_checker._state import LogState
from rift_checker.errors import InvalidHistory
from rift_checker.history import (
    ASSIGN,
    COMMIT,
    FINAL_READ,
    HIGH_WATERMARK,
    LEADER,
    NEMESIS,
    POLL,
    SEND,
    SUBSCRIBE,
)
from rift_checker.stats import Stats

__all__ = ["analyze"]

# done_at's first size, in ops.
_GROW = 1 << 16

#: False makes the pass pure Python even where the native core is built (for the
#: tests and the benchmark that compare the two).
NATIVE = True


def _bad(msg: str, e: Line, path: str | None) -> InvalidHistory:
    return InvalidHistory(msg, line=e.index + 2, path=path)


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
                _observe(e, state, stats, path)
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
            # to _fold (see the module doc).
            if typ != "ok" or type(p) is not int:
                if typ == "info" and p != NEMESIS:  # the nemesis is one actor, never checked
                    retired.add(p)
                _fold(inv, e, typ, state, stats)
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
                    _fold(inv, e, typ, state, stats)
                    continue
                if lat_send is None:
                    stats.op(f, typ, inv.time, t)
                    lat_send = latency[f]
                else:
                    lat_send.append(t - inv.time)
                tp = tp_pairs.get((topic, dv.partition))
                if tp is None:
                    tp = state.tp_of(topic, dv.partition)
                _acked(state, p, tp, dv.offset, v, op, expected - 1)
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
                _fold_read(state, p, op, dv.records, f == FINAL_READ, e, path)
            else:
                _fold(inv, e, typ, state, stats)
                continue
            if op >= capacity:
                done_at = _grow(state, op)
                capacity = len(done_at)
            done_at[op] = expected - 1
            last_done = t  # completions arrive in time order
        self.last_time = last_time
        self.last_done = last_done
        self.expected = expected

    def close(self) -> None:
        """Fold in the invokes never completed; settle the statistics."""
        for inv in sorted(self.open_ops.values(), key=lambda e: e.index):
            _fold(inv, None, "info", self.state, self.stats)
        if self.expected:
            self.stats.seen(
                events=self.expected, first_time=self.first.time, last_time=self.last_done
            )


def _grow(st: LogState, op: int) -> array[int]:
    """Make room for op ``op`` in ``done_at`` (zero means "never completed").

    It at least doubles, so the copies of a growing array add up to linear time.
    """
    done_at = st.done_at
    size = len(done_at)
    if op >= size:
        done_at.extend(array("q", bytes(8 * max(op + 1 - size, size, _GROW))))
    return done_at


def _fold(inv: Line, done: Line | None, typ: str, st: LogState, stats: Stats) -> None:
    """Fold in one operation by the general path (``done`` None: it never completed)."""
    path = st.path
    op = inv.index
    f = inv.f
    if done is None:
        stats.op(f, "info", inv.time, None)
    else:
        stats.op(f, typ, inv.time, done.time)
        if op >= len(st.done_at):
            _grow(st, op)
        st.done_at[op] = done.index
    if inv.process == NEMESIS:
        return
    if f == SEND:
        _send(inv, done, typ, st, path)
    elif f in (POLL, FINAL_READ):
        if typ == "ok":
            assert done is not None
            _read(inv, done, f == FINAL_READ, st, path)
    elif f in (ASSIGN, SUBSCRIBE):
        if typ != "fail":
            # A new assignment restarts the process's positions (ok or info:
            # info retires the process anyway).
            st.positions.pop(inv.process, None)
    elif f == COMMIT:
        if typ == "ok":
            assert done is not None
            _commit(inv, done, st, path)
    else:
        raise _bad(
            f"unknown f {f!r} for a client op; known: send, poll, final-read, assign, "
            f"subscribe, commit (nemesis ops use process {NEMESIS!r})",
            inv,
            path,
        )


def _send(inv: Line, done: Line | None, typ: str, st: LogState, path: str | None) -> None:
    """The general path of a send (see the module doc)."""
    iv = inv.value
    if type(iv) is Value:  # as a dict's .get() would see it
        v = None if iv.value is UNSET else iv.value
        topic = None if iv.topic is UNSET else iv.topic
    elif type(iv) is dict:
        v = iv.get("value")
        topic = iv.get("topic")
    else:
        raise _bad(
            'a send invoke value must be {"topic", "partition" or "key", "value"}', inv, path
        )
    tv = type(v)
    if (tv is not str and tv is not int) or type(topic) is not str or "/" in topic or not topic:
        raise _bad("a send needs a topic (no '/') and a string or integer value", inv, path)
    op = inv.index
    if v in st.sent:
        raise _bad(
            f"value {v!r} is sent twice (also by op {st.sent[v]}); values must be unique",
            inv,
            path,
        )
    st.sent[v] = op
    if typ == "fail":
        st.failed[v] = op
        return
    if typ != "ok":
        st.unknown[v] = op
        return
    assert done is not None
    dv = plain(done.value)
    if type(dv) is not dict:
        raise _bad('a send ok value must carry "partition" and "offset"', done, path)
    partition = dv.get("partition")
    offset = dv.get("offset")
    if type(partition) is not int or type(offset) is not int or partition < 0 or offset < 0:
        raise _bad('a send ok value needs integer "partition" and "offset" >= 0', done, path)
    if dv.get("value", v) != v or dv.get("topic", topic) != topic:
        raise _bad("a send ok value names another topic or value than its invoke", done, path)
    _acked(st, inv.process, st.tp_of(topic, partition), offset, v, op, done.index)


def _acked(  # noqa: PLR0917 - on the hot path, where positional calls are cheapest
    st: LogState, process: Any, tp: int, offset: int, v: Any, op: int, done_index: int
) -> None:
    """Fold in that ``op`` of ``process`` wrote ``v`` and got it acked at ``offset`` of ``tp``."""
    st.acked[v] = (tp, offset)
    tops = st.reach_top[tp]
    if tops and tops[-1] >= offset:
        # Offset ``offset`` or a later one had been shown already: had it been by
        # the time this write was invoked? (the cycle criterion, rift_checker._cycles)
        i = bisect_left(st.reach_done[tp], op)
        if i and tops[i - 1] >= offset:
            st.suspects.add(tp)
    else:
        tops.append(offset)
        st.reach_done[tp].append(done_index)
    vat = st.val_at[tp]
    if offset not in vat and v not in st.where:
        # The common case: the ack is the first sighting of the value and of the
        # offset, which acked and sent record (see rift_checker._state).
        vat[offset] = v
    else:
        st.place(tp, offset, v, op)
    sends = st.last_send[tp]
    last = sends.get(process)
    if last is not None and offset <= last[0]:
        _send_went_back(st, process, tp, offset, v, op, last)
    sends[process] = (offset, op)


def _send_went_back(  # noqa: PLR0917 - called by the native core too, positionally
    st: LogState, process: Any, tp: int, offset: int, v: Any, op: int, last: tuple[int, int]
) -> None:
    """A nonmonotonic-send: ``op`` got ``offset``, not above ``last`` (offset, op) of before."""
    st.case(
        "nonmonotonic-send",
        (last[1], op),
        f"process {process} sent {v!r} to {st.tp_names[tp]} at offset {offset} after "
        f"its earlier send got offset {last[0]}",
    )


def _read(inv: Line, done: Line, final: bool, st: LogState, path: str | None) -> None:
    """The general path of a poll or final read: validate every record, then fold."""
    dv = plain(done.value)
    records = dv.get("records") if type(dv) is dict else None
    if type(records) is not dict:
        raise _bad('a poll ok value must be {"records": {"topic/partition": [...]}}', done, path)
    for key, recs in records.items():
        if st.tp_id(key) < 0:
            raise _bad(f"records key {key!r} is not 'topic/partition'", done, path)
        if type(recs) is not list:
            raise _bad(f"records of {key} must be a list of [offset, value]", done, path)
        for rec in recs:
            try:
                o, v = rec
            except (TypeError, ValueError):
                raise _bad(f"a record of {key} must be [offset, value]", done, path) from None
            tv = type(v)
            if type(o) is not int or o < 0 or (tv is not str and tv is not int):
                raise _bad(
                    f"a record of {key} needs an offset >= 0 and a str/int value", done, path
                )
            if type(rec) is not list:
                raise _bad(f"a record of {key} must be [offset, value]", done, path)
    assigned = dv.get("assigned")
    if assigned is not None and not final:
        _assigned(inv, done, assigned, st, path)
    starts = dv.get("log-start")
    if starts is not None and final:
        _log_start(done, starts, st, path)
    _fold_read(st, inv.process, inv.index, records, final, done, path)


def _log_start(done: Line, starts: Any, st: LogState, path: str | None) -> None:
    """A final read's ``"log-start"``: where each listed partition began when read
    (retention had deleted the records below it, acknowledged or not)."""
    shape = '"log-start" must be {"topic/partition": offset}'
    for _, tp, start in _offsets_by_tp(starts, shape, "a log start", done, st, path):
        if start > st.final_start.get(tp, 0):
            st.final_start[tp] = start


def _commit(inv: Line, done: Line, st: LogState, path: str | None) -> None:
    """Remember an acknowledged commit: per partition, in completion order, the
    highest offset committed so far (``lost-commit`` compares assignments with it)."""
    dv = plain(done.value)
    offsets = dv.get("offsets") if type(dv) is dict else None
    if offsets is None:
        return  # a commit that does not say what it committed checks nothing
    shape = 'a commit ok value must be {"offsets": {"topic/partition": offset}}'
    for _, tp, offset in _offsets_by_tp(offsets, shape, "a committed offset", done, st, path):
        history = st.commits.setdefault(tp, [])
        top = history[-1][1] if history else -1
        if offset > top:
            history.append((done.index, offset, inv.index))


def _assigned(inv: Line, done: Line, assigned: Any, st: LogState, path: str | None) -> None:
    """A poll reporting the partitions a group handed its process: their positions
    restart at the given offsets, which must not lie below an offset the group
    committed, with an acknowledgement, before this poll began (``lost-commit``)."""
    shape = '"assigned" must be {"topic/partition": offset}'
    positions = st.positions.get(inv.process)
    for key, tp, start in _offsets_by_tp(assigned, shape, "an assigned partition", done, st, path):
        if positions is not None:
            positions.pop(tp, None)
        history = st.commits.get(tp)
        if not history:
            continue
        # The last commit acknowledged before the poll was invoked.
        i = bisect_left(history, inv.index, key=lambda c: c[0]) - 1
        if i >= 0 and history[i][1] > start:
            _, committed, commit_op = history[i]
            st.case(
                "lost-commit",
                (commit_op, inv.index),
                f"process {inv.process} was assigned {key} at offset {start}, below offset "
                f"{committed} that op {commit_op} had committed, acknowledged before this "
                "poll began",
            )


def _offsets_by_tp(  # noqa: PLR0917 - three callers, each naming what it validates
    value: Any, shape: str, item: str, done: Line, st: LogState, path: str | None
) -> list[tuple[str, int, int]]:
    """Validate a ``{"topic/partition": offset}`` map of a completion's value:
    ``(key, partition id, offset)`` per entry, or InvalidHistory saying ``shape``
    (not a map) or what ``item`` needs (a bad key or offset)."""
    if type(value) is not dict:
        raise _bad(shape, done, path)
    out: list[tuple[str, int, int]] = []
    for key, offset in value.items():
        tp = st.tp_id(key)
        if tp < 0 or type(offset) is not int or offset < 0:
            raise _bad(f"{item} needs a 'topic/partition' key and an int >= 0: {key!r}", done, path)
        out.append((key, tp, offset))
    return out


def _fold_read(  # noqa: PLR0917 - on the hot path, where positional calls are cheapest
    st: LogState,
    process: Any,
    op: int,
    records: dict[str, Any],
    final: bool,
    done: Line,
    path: str | None,
) -> None:
    """Fold in the records of an ok read, each a well-typed ``[offset, value]``.

    Reads are the bulk of a history (every record of every poll and the whole log
    in the final read), so this loop does no more per record than it must: the
    order test, the offset's known value, and the first read of the value.
    """
    positions = None
    if not final:
        positions = st.positions.get(process)
        if positions is None:
            positions = st.positions[process] = {}
    read = st.read
    tps = st.tps
    val_at = st.val_at
    max_read = st.max_read
    for key, recs in records.items():
        tp = tps.get(key)
        if tp is None:
            tp = st.tp_id(key)
            if tp < 0:
                raise _bad(f"records key {key!r} is not 'topic/partition'", done, path)
        if final:
            st.final_tps.add(tp)
        if not recs:
            continue
        known = val_at[tp].get
        first = recs[0][0]
        if positions is not None and (at := positions.get(tp)) is not None:
            # Continuing from the process's previous read of this partition.
            prev, prev_op = at
            if first <= prev:
                _poll_went_back(st, (prev_op, op), process, key, first, prev)
            elif first != prev + 1:
                st.gaps.append((tp, prev, first, prev_op, op))
        # From here on each record is compared with the one before it in this read.
        prev = first - 1
        top = -1  # the highest offset read, once the loop has seen the last one
        for o, v in recs:
            if o != prev + 1:  # a step back or a gap
                if o <= prev:
                    _poll_went_back(st, (op,), process, key, o, prev)
                    # A peak: the highest offset is the last one or a peak.
                    if prev > top:  # noqa: PLR1730 - a branch is faster than max() here
                        top = prev
                else:
                    st.gaps.append((tp, prev, o, op, op))
            prev = o
            if known(o) != v:
                st.place(tp, o, v, op)
            if v not in read:
                read[v] = op
        if prev > top:  # noqa: PLR1730
            top = prev
        if top > max_read[tp][0]:
            max_read[tp] = (top, op)
        st.touch[tp].setdefault(top, ~op)  # ~op marks a read, not a write
        tops = st.reach_top[tp]
        if not tops or top > tops[-1]:
            tops.append(top)
            st.reach_done[tp].append(done.index)
        if positions is not None:
            positions[tp] = (prev, op)


def _poll_went_back(  # noqa: PLR0917 - called by the native core too, positionally
    st: LogState, ops: tuple[int, ...], process: Any, key: str, offset: int, prev: int
) -> None:
    """A nonmonotonic-poll: ``process`` read ``offset`` of ``key`` after ``prev``, in the
    same poll (``ops`` is that poll) or in its previous one (``ops`` is both)."""
    where = "the same poll" if len(ops) == 1 else "its previous poll"
    st.case(
        "nonmonotonic-poll",
        ops,
        f"process {process} read {key} offset {offset} after offset {prev} in {where}",
    )


def _observe(e: Line, st: LogState, stats: Stats, path: str | None) -> None:
    f = e.f
    stats.observation(f, e.time)
    v = plain(e.value)
    if f not in (LEADER, HIGH_WATERMARK):
        raise _bad(f"unknown observation f {f!r}; known: leader, high-watermark", e, path)
    topic = v.get("topic") if type(v) is dict else None
    partition = v.get("partition") if type(v) is dict else None
    if type(topic) is not str or type(partition) is not int:
        raise _bad(f"a {f} observation needs a topic and an integer partition", e, path)
    assert type(v) is dict
    key = f"{topic}/{partition}"
    if f == LEADER:
        epoch = v.get("epoch")
        node = v.get("node")
        if type(epoch) is not int or type(node) is not str:
            raise _bad("a leader observation needs an integer epoch and a node", e, path)
        nodes = st.leaders.setdefault((key, epoch), {})
        if node not in nodes:
            for other, idx in nodes.items():
                st.case(
                    "multiple-leaders",
                    (idx, e.index),
                    f"{other} and {node} both led {key} in epoch {epoch}",
                )
                break
            nodes[node] = e.index
        return
    offset = v.get("offset")
    if type(offset) is not int:
        raise _bad("a high-watermark observation needs an integer offset", e, path)
    epoch = v.get("epoch")
    if epoch is not None and type(epoch) is not int:
        raise _bad("a high-watermark observation's epoch must be an integer", e, path)
    last = st.hw.get(key)
    # With leader epochs, only a leader at least as new as the one that reported the
    # highest value can regress it: a deposed leader that has not yet heard of its
    # successor reports its own, older view (clients fence it by epoch).
    stale = epoch is not None and last is not None and last[2] is not None and epoch < last[2]
    if last is not None and offset < last[0] and not stale:
        st.case(
            "hw-regression",
            (last[1], e.index),
            f"the high watermark of {key} went back from {last[0]} to {offset}"
            + (f" (epoch {last[2]} to {epoch})" if epoch is not None else ""),
        )
    if last is None or offset >= last[0] or not stale:
        st.hw[key] = (
            offset,
            e.index,
            epoch if epoch is not None else (last[2] if last else None),
        )


# The native core (``_native.c``), where a C compiler built it at install time. A
# core that does not fit this module (built from another version of it and not
# rebuilt) is left unused, like a missing one; tests/unit/test_native.py fails then.
_native_run: Any = None
try:
    from rift_checker import _native

    _native.setup(ModelLine, Value, UNSET, _grow, _send_went_back, _poll_went_back, _fold, _observe)
    _native_run = _native.run
except (ImportError, TypeError):  # pragma: no cover - no compiler: the pure-Python pass
    pass
