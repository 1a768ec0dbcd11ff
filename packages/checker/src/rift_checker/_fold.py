"""How one operation changes the checker's log state (:mod:`rift_checker._state`).

Theory of operation: the pass (:mod:`rift_checker._analyzer`) pairs every
operation and hands it here once, when it completes. :func:`fold` is the *general
path*: it validates the operation's plain JSON value key by key in a fixed order
(so the first problem is the one reported) and then folds it in. The pass's fast
path validates ok sends and reads more cheaply (their values were shaped by the
typed decoder) and folds them in with the same :func:`acked` and
:func:`fold_read`; the native core (``_native.c``) does what those two do in C, and
calls back :func:`send_went_back`, :func:`poll_went_back` and
``LogState.place`` for the rare branches, so every case is worded here.
Observations go to :func:`observe`.

Anomalies that a single operation can reveal (two values at one offset, a poll
going backwards) become cases at once; those that need the whole history are left
to :mod:`rift_checker._finish` and :mod:`rift_checker._cycles`.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from typing import Any

from rift_checker._decode import UNSET, Line, Value, plain
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

__all__ = [
    "fold",
    "acked",
    "fold_read",
    "observe",
    "grow",
    "send_went_back",
    "poll_went_back",
]

# done_at's first size, in ops.
_GROW = 1 << 16


def _bad(msg: str, e: Line, path: str | None) -> InvalidHistory:
    return InvalidHistory(msg, line=e.index + 2, path=path)


def grow(st: LogState, op: int) -> array[int]:
    """Make room for op ``op`` in ``done_at`` (zero means "never completed").

    It at least doubles, so the copies of a growing array add up to linear time.
    """
    done_at = st.done_at
    size = len(done_at)
    if op >= size:
        done_at.extend(array("q", bytes(8 * max(op + 1 - size, size, _GROW))))
    return done_at


def fold(inv: Line, done: Line | None, typ: str, st: LogState, stats: Stats) -> None:
    """Fold in one operation by the general path (``done`` None: it never completed)."""
    path = st.path
    op = inv.index
    f = inv.f
    if done is None:
        stats.op(f, "info", inv.time, None)
    else:
        stats.op(f, typ, inv.time, done.time)
        if op >= len(st.done_at):
            grow(st, op)
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
    acked(st, inv.process, st.tp_of(topic, partition), offset, v, op, done.index)


def acked(  # noqa: PLR0917 - on the hot path, where positional calls are cheapest
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
        send_went_back(st, process, tp, offset, v, op, last)
    sends[process] = (offset, op)


def send_went_back(  # noqa: PLR0917 - called by the native core too, positionally
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
    fold_read(st, inv.process, inv.index, records, final, done, path)


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


def fold_read(  # noqa: PLR0917 - on the hot path, where positional calls are cheapest
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
                poll_went_back(st, (prev_op, op), process, key, first, prev)
            elif first != prev + 1:
                st.gaps.append((tp, prev, first, prev_op, op))
        # From here on each record is compared with the one before it in this read.
        prev = first - 1
        top = -1  # the highest offset read, once the loop has seen the last one
        for o, v in recs:
            if o != prev + 1:  # a step back or a gap
                if o <= prev:
                    poll_went_back(st, (op,), process, key, o, prev)
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


def poll_went_back(  # noqa: PLR0917 - called by the native core too, positionally
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


def observe(e: Line, st: LogState, stats: Stats, path: str | None) -> None:
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
