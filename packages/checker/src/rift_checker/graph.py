"""The full history graph, as a networkx DiGraph, for inspection and cross-checks.

Nodes are op ids of sends known to have happened (ok, or info and read) and of ok
polls and final reads. Edges carry ``why`` in {"write-write", "write-read",
"real-time"}:

* write-write: consecutive known writes of a partition in offset order;
* write-read: the send of a value -> each read that returned it;
* real-time: A -> B when A completed before B was invoked, reduced with the
  usual sweep (B is linked only from the ops completed most recently before its
  invoke that no other such op follows), so the edge count stays near-linear.

The checker itself never builds this graph (see :mod:`rift_checker._cycles` for
the equivalent linear criterion); use this for histories small enough to draw,
and to test that criterion.
"""

from __future__ import annotations

import itertools
from typing import Any

import networkx as nx

from rift_checker.history import FINAL_READ, NEMESIS, OK, POLL, SEND, Op
from rift_checker.reader import HistoryReader, HistorySource

__all__ = ["history_graph"]


def history_graph(source: HistorySource) -> Any:
    """Build the history graph of ``source`` (returns a ``networkx.DiGraph``)."""
    g = nx.DiGraph()
    ops: list[Op] = []
    with HistoryReader(source) as reader:
        for item in reader:
            if isinstance(item, Op) and item.process != NEMESIS:
                ops.append(item)
    writer_of: dict[Any, int] = {}
    position: dict[Any, tuple[str, int]] = {}
    reads: list[tuple[int, Any]] = []
    for op in ops:
        if op.f == SEND:
            writer_of[op.invoke.value["value"]] = op.id
            if op.type == OK:
                v = op.value
                position.setdefault(v["value"], (f"{v['topic']}/{v['partition']}", v["offset"]))
        elif op.f in (POLL, FINAL_READ) and op.type == OK:
            for key, recs in op.value["records"].items():
                for offset, value in recs:
                    position.setdefault(value, (key, offset))
                    reads.append((op.id, value))
    happened = {op.id for op in ops if op.f != SEND or op.type == OK}
    happened |= {writer_of[v] for _, v in reads if v in writer_of}
    by_tp: dict[str, list[tuple[int, int]]] = {}
    for value, (key, offset) in position.items():
        w = writer_of.get(value)
        if w is not None and w in happened:
            by_tp.setdefault(key, []).append((offset, w))
    for chain in by_tp.values():
        chain.sort()
        for (_, a), (_, b) in itertools.pairwise(chain):
            if a != b:
                g.add_edge(a, b, why="write-write")
    for reader_id, value in reads:
        w = writer_of.get(value)
        if w is not None and w in happened and w != reader_id:
            g.add_edge(w, reader_id, why="write-read")
    # Real-time sweep over events in index order.
    events: list[tuple[int, int, Op]] = []
    for op in ops:
        if op.id in happened:
            g.add_node(op.id)
            events.append((op.invoke.index, 0, op))
            if op.completion is not None and op.type == OK:
                events.append((op.completion.index, 1, op))
    events.sort(key=lambda e: e[0])
    frontier: set[int] = set()
    preds: dict[int, frozenset[int]] = {}
    for _, kind, op in events:
        if kind == 0:
            preds[op.id] = frozenset(frontier)
            for a in frontier:
                if not g.has_edge(a, op.id):
                    g.add_edge(a, op.id, why="real-time")
        else:
            frontier -= preds[op.id]
            frontier.add(op.id)
    return g
