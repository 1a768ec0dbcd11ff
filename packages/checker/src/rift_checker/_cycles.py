"""Cycles in the history graph, found in near-linear time and explained with networkx.

The history graph (see :mod:`rift_checker.graph`, which builds it in full) has an
edge A -> B when A must come before B:

* write-write: A's value sits at a lower offset than B's in one partition;
* write-read: B read A's value;
* real time: A completed before B was invoked (process order is a special case:
  a process runs one op at a time, so its earlier op completed before its next).

Building that graph for a million ops would cost far more than the bar allows, so
this module decides acyclicity with a criterion equivalent to "the graph has a
cycle" (proof sketch below), and builds a small networkx graph only for each
witness, to order and word the steps of its explanation.

Criterion: the graph has a cycle iff some write W at offset o of a partition has a
*data successor* that completed before W was invoked, where the data successors
of W are the writes at offsets > o in that partition and the reads whose highest
offset in it is >= o. Sketch: "if" is the cycle W -> ... -> Z -> W whose last
edge is real time. "Only if": data edges only leave writes, and real-time edges
compose, so any cycle is a ring of hops W_i ~data~> Z_i -rt-> W_{i+1}. Write
d(W) for the earliest completion among W's data successors; the hop gives
d(W_i) <= done(Z_i) < inv(W_{i+1}). If d(W_i) >= inv(W_i) held for every i, the
invoke times would strictly increase around the ring, which is impossible. A pure
write-write ring cannot exist (offsets strictly increase). The per-partition check
is a sweep by descending offset with a running minimum: O(n log n) for the sorts,
nearly linear since offsets arrive almost sorted.

Most histories have no cycle, so the sweep runs only on partitions that the
streaming pass marked as *suspects*. With F(t), the highest offset of a partition
shown (acked, or as the highest offset of a read) by ops completed before event t,
the criterion says that write W at offset o closes a cycle only if F(inv(W)) >= o.
F is a step function that only grows, recorded as it grows (``reach_top`` and
``reach_done`` in :mod:`rift_checker._state`); the pass tests each ok send against it
when it folds the ack, where every op completed before the send was invoked has
already been seen, and this module tests the sends that ended info but were read,
once the whole of F is known. A partition with no suspect write has no cycle
through it; a suspect one is swept as above, which decides and explains.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

import networkx as nx

from rift_checker._state import LogState

__all__ = ["find_cycles"]


def _read_unknown_writes(st: LogState) -> list[tuple[Any, int]]:
    """Values of sends that completed info (or never) yet were read: they did happen."""
    read = st.read
    return [(v, op) for v, op in st.unknown.items() if v in read]


def _writes_by_tp(st: LogState) -> list[list[tuple[int, int]]]:
    """Per partition: (offset, op id) of every write that is known to have happened."""
    by_tp: list[list[tuple[int, int]]] = [[] for _ in st.tp_names]
    sent = st.sent
    for v, (tp, offset) in st.acked.items():
        by_tp[tp].append((offset, sent[v]))
    for v, op in _read_unknown_writes(st):
        tp, offset, _ = st.where[v]  # never acked: a read saw it first
        by_tp[tp].append((offset, op))
    return by_tp


def _touch(st: LogState, tp: int) -> dict[int, int]:
    """Per offset of ``tp``: the op that first completed having shown it.

    An ack (op id) or a read whose highest offset it was (``~id``); the state keeps
    the reads, and the acks are merged in here, by completion index.
    """
    touch = dict(st.touch[tp])
    done_at = st.done_at
    sent = st.sent
    for v, (t, offset) in st.acked.items():
        if t != tp:
            continue
        w = sent[v]
        z = touch.get(offset)
        if z is None or done_at[w] < done_at[z if z >= 0 else ~z]:
            touch[offset] = w
    return touch


def find_cycles(st: LogState) -> None:
    """Add a ``cycle`` case per op that completed before an op it follows in the log."""
    for v, op in _read_unknown_writes(st):
        tp, offset, _ = st.where[v]  # never acked: a read saw it first
        i = bisect_left(st.reach_done[tp], op)
        if i and st.reach_top[tp][i - 1] >= offset:
            st.suspects.add(tp)
    if not st.suspects:
        return
    done_at = st.done_at
    for tp, writes in enumerate(_writes_by_tp(st)):
        if tp not in st.suspects or not writes:
            continue
        touch = _touch(st, tp)
        offsets = sorted(touch, reverse=True)
        writes.sort(reverse=True)
        best_done = -1
        best: tuple[int, int] | None = None  # (offset, touch entry) completing earliest
        i = 0
        reported: set[int] = set()
        for offset, w in writes:
            while i < len(offsets) and offsets[i] >= offset:
                z = touch[offsets[i]]
                done = done_at[z if z >= 0 else ~z]
                if best is None or done < best_done:
                    best_done, best = done, (offsets[i], z)
                i += 1
            if best is None or best_done >= w or best[1] in reported:
                continue
            oz, z = best
            if z >= 0 and oz == offset:
                continue  # two writes acked at one offset: inconsistent-offsets says it
            reported.add(z)
            if len(st.cases.get("cycle", ())) >= st.max_cases:
                st.counts["cycle"] = st.counts.get("cycle", 0) + 1  # counted, not explained
                continue
            _explain(st, tp=tp, offset=offset, w=w, oz=oz, z=z, done=best_done)


def _op_name(st: LogState, op: int, value: Any) -> str:
    return f"op {op} (send of {value!r})"


def _explain(st: LogState, *, tp: int, offset: int, w: int, oz: int, z: int, done: int) -> None:
    name = st.tp_names[tp]
    vat = st.val_at[tp]
    wv = _value_of_op(st, tp, offset, w)
    g = nx.DiGraph()
    w_label = _op_name(st, w, wv)
    zid = z if z >= 0 else ~z
    if z >= 0:
        zv = vat.get(oz)
        z_label = _op_name(st, zid, zv)
        g.add_edge(
            w,
            zid,
            why=f"{w_label} precedes {z_label} because {name} holds {wv!r} "
            f"at offset {offset}, before {zv!r} at offset {oz} (write-write, log order)",
        )
    else:
        z_label = f"op {zid} (poll)"
        zv = vat.get(oz)
        writer = st.sent.get(zv)
        if oz == offset and writer == w:
            g.add_edge(
                w,
                zid,
                why=f"{w_label} precedes {z_label} because op {zid} read {wv!r} "
                f"at offset {offset} of {name} (write-read)",
            )
        elif writer is not None and writer != w:
            x_label = _op_name(st, writer, zv)
            g.add_edge(
                w,
                writer,
                why=f"{w_label} precedes {x_label} because {name} holds "
                f"{wv!r} at offset {offset}, before {zv!r} at offset {oz} "
                "(write-write, log order)",
            )
            g.add_edge(
                writer,
                zid,
                why=f"{x_label} precedes {z_label} because op {zid} read "
                f"{zv!r} at offset {oz} of {name} (write-read)",
            )
        else:
            g.add_edge(
                w,
                zid,
                why=f"{w_label} precedes {z_label} because op {zid} read offset {oz} "
                f"of {name}, which the log puts after {wv!r} at offset {offset} "
                "(write-read through log order)",
            )
    g.add_edge(
        zid,
        w,
        why=f"{z_label} precedes {w_label} because op {zid} completed (event {done}) "
        f"before op {w} was invoked (event {w}) (real time)",
    )
    cycle = nx.find_cycle(g, source=w)
    steps = tuple(g.edges[a, b]["why"] for a, b in cycle)
    ops = tuple(a for a, _ in cycle)
    if z < 0 and oz == offset and st.sent.get(zv) == w:
        summary = f"op {zid} read {wv!r} before op {w}, which wrote it, was even invoked"
    else:
        shown = "acknowledged" if z >= 0 else "read"
        summary = (
            f"the log puts {wv!r} of op {w} at offset {offset} of {name}, before offset {oz}, "
            f"yet op {zid} had {shown} offset {oz} before op {w} was invoked"
        )
    st.case("cycle", ops, summary, steps=steps)


def _value_of_op(st: LogState, tp: int, offset: int, op: int) -> Any:
    value = st.val_at[tp].get(offset)
    if st.sent.get(value) == op:
        return value
    # Rare (the offset also holds another value): search the sends, at most once
    # per explained case, and only for kept cases.
    return next((v for v, sender in st.sent.items() if sender == op), value)
