"""One streaming pass over a history that builds the compact log state.

Theory of operation: the pass sees each operation once, when it completes (pairs
from :mod:`rift_checker._jsonl`), validates its value against the log model, and
folds it into per-partition maps. Nothing holds an operation object after its
completion: the state is keyed by value and offset and stores op ids, the indexes
of invoke events, so a proof can be fetched again from the file. Anomalies that a
single event can reveal (two values at one offset, a poll going backwards) become
cases at once; those that need the whole history (lost, unseen, skips, cycles)
are decided by :mod:`rift_checker._finish` from this state.

Times in the cycle check are event indexes: the file is written in real-time order,
so op A completed before op B was invoked exactly when A's completion index is
below B's id.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from typing import Any

from rift_checker._jsonl import Pair
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


def _bad(msg: str, e: dict[str, Any], path: str | None) -> InvalidHistory:
    return InvalidHistory(msg, line=e["index"] + 2, path=path)


def analyze(pairs: Iterable[Pair], state: LogState, stats: Stats) -> None:
    """Fold every pair into ``state`` and ``stats``; raise InvalidHistory on bad values."""
    path = state.path
    done_at = state.done_at
    latency = stats.latency
    by_f = stats.by_f
    fast = 0  # ok ops counted by the inlined path below
    fast_first = fast_last = -1
    for inv, done in pairs:
        if inv is None:
            assert done is not None
            _observe(done, state, stats, path)
            continue
        op = inv["index"]
        f = inv["f"]
        if done is None:
            stats.op(f, "info", inv["time"], None)
            typ = "info"
        else:
            typ = done["type"]
            # Stats.op inlined for the common case (ok of a known f): the hot loop.
            lat = latency.get(f) if typ == "ok" else None
            if lat is None:
                stats.op(f, typ, inv["time"], done["time"])
            else:
                by_f[f]["ok"] += 1
                t = inv["time"]
                lat.append(done["time"] - t)
                fast += 1
                if fast_first < 0 or t < fast_first:
                    fast_first = t
                fast_last = done["time"]  # completions arrive in time order
            # done_at[op] = completion index; grown in chunks, zero means "never".
            if op >= len(done_at):
                done_at.extend(array("q", bytes(8 * max(op + 1 - len(done_at), 65536))))
            done_at[op] = done["index"]
        if inv.get("process") == NEMESIS:
            continue
        if f == SEND:
            _send(inv, done, typ, state, path)
        elif f in (POLL, FINAL_READ):
            if typ == "ok":
                assert done is not None
                _read(inv, done, f == FINAL_READ, state, path)
        elif f in (ASSIGN, SUBSCRIBE):
            if typ != "fail":
                # A new assignment restarts the process's positions (ok or info:
                # info retires the process anyway).
                state.positions.pop(inv["process"], None)
        elif f != COMMIT:
            raise _bad(
                f"unknown f {f!r} for a client op; known: send, poll, final-read, assign, "
                f"subscribe, commit (nemesis ops use process {NEMESIS!r})",
                inv,
                path,
            )
    if fast:
        stats.ops_seen(2 * fast, fast_first, fast_last)


def _send(
    inv: dict[str, Any], done: dict[str, Any] | None, typ: str, st: LogState, path: str | None
) -> None:
    iv = inv.get("value")
    if type(iv) is not dict:
        raise _bad(
            'a send invoke value must be {"topic", "partition" or "key", "value"}', inv, path
        )
    v = iv.get("value")
    topic = iv.get("topic")
    tv = type(v)
    if (tv is not str and tv is not int) or type(topic) is not str or "/" in topic or not topic:
        raise _bad("a send needs a topic (no '/') and a string or integer value", inv, path)
    op = inv["index"]
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
        return
    assert done is not None
    dv = done.get("value")
    if type(dv) is not dict:
        raise _bad('a send ok value must carry "partition" and "offset"', done, path)
    partition = dv.get("partition")
    offset = dv.get("offset")
    if type(partition) is not int or type(offset) is not int or partition < 0 or offset < 0:
        raise _bad('a send ok value needs integer "partition" and "offset" >= 0', done, path)
    if dv.get("value", v) != v or dv.get("topic", topic) != topic:
        raise _bad("a send ok value names another topic or value than its invoke", done, path)
    key = f"{topic}/{partition}"
    tp = st.tps.get(key)
    if tp is None:
        tp = st.tp_id(key)
    st.acked[v] = (tp, offset)
    vat = st.val_at[tp]
    if offset not in vat and v not in st.where:  # the common case, inlined
        vat[offset] = v
        st.val_op[tp][offset] = op
        st.where[v] = (tp, offset, op)
    else:
        st.place(tp, offset, v, op)
    st.touch[tp].setdefault(offset, op)
    pkey = (inv["process"], tp)
    last = st.last_send.get(pkey)
    if last is not None and offset <= last[0]:
        st.case(
            "nonmonotonic-send",
            (last[1], op),
            f"process {inv['process']} sent {v!r} to {st.tp_names[tp]} at offset {offset} after "
            f"its earlier send got offset {last[0]}",
        )
    st.last_send[pkey] = (offset, op)


def _read(
    inv: dict[str, Any], done: dict[str, Any], final: bool, st: LogState, path: str | None
) -> None:
    dv = done.get("value")
    records = dv.get("records") if type(dv) is dict else None
    if type(records) is not dict:
        raise _bad('a poll ok value must be {"records": {"topic/partition": [...]}}', done, path)
    op = inv["index"]
    process = inv["process"]
    positions = None
    if not final:
        positions = st.positions.get(process)
        if positions is None:
            positions = st.positions[process] = {}
    read = st.read
    tps = st.tps
    for key, recs in records.items():
        tp = tps.get(key)
        if tp is None:
            tp = st.tp_id(key)
        if tp < 0:
            raise _bad(f"records key {key!r} is not 'topic/partition'", done, path)
        if type(recs) is not list:
            raise _bad(f"records of {key} must be a list of [offset, value]", done, path)
        if final:
            st.final_tps.add(tp)
        vat = st.val_at[tp]
        prev = -1
        prev_op = op
        if positions is not None and tp in positions:
            prev, prev_op = positions[tp]
        top = -1
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
            if prev >= 0:
                if o <= prev:
                    st.case(
                        "nonmonotonic-poll",
                        (prev_op, op) if prev_op != op else (op,),
                        f"process {process} read {key} offset {o} after offset {prev}"
                        + (" in the same poll" if prev_op == op else " in its previous poll"),
                    )
                elif o != prev + 1:
                    st.gaps.append((tp, prev, o, prev_op, op))
            prev = o
            prev_op = op
            if o > top:  # noqa: PLR1730 - a branch is faster than max() here
                top = o
            if vat.get(o) != v:
                st.place(tp, o, v, op)
            if v not in read:
                read[v] = op
        if top >= 0:
            if top > st.max_read[tp][0]:
                st.max_read[tp] = (top, op)
            st.touch[tp].setdefault(top, ~op)  # ~op marks a read, not a write
            if positions is not None:
                positions[tp] = (prev, op)


def _observe(e: dict[str, Any], st: LogState, stats: Stats, path: str | None) -> None:
    f = e["f"]
    stats.observation(f, e["time"])
    v = e.get("value")
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
                    (idx, e["index"]),
                    f"{other} and {node} both led {key} in epoch {epoch}",
                )
                break
            nodes[node] = e["index"]
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
            (last[1], e["index"]),
            f"the high watermark of {key} went back from {last[0]} to {offset}"
            + (f" (epoch {last[2]} to {epoch})" if epoch is not None else ""),
        )
    if last is None or offset >= last[0] or not stale:
        st.hw[key] = (
            offset,
            e["index"],
            epoch if epoch is not None else (last[2] if last else None),
        )
