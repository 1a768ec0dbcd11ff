"""Partition shapes as grudges: pure functions of the node list (and a seeded Random).

A *grudge* maps every node to the set of nodes whose packets it drops. It is
directional: ``{"n1": {"n2"}}`` means n1 stops hearing n2 while n2 still hears n1
(TCP between them still breaks, since replies are lost; one-way shapes matter for
systems that gossip or use UDP-like heartbeats).

Every function returns a grudge with a key for every node (an empty set for nodes
that drop nothing), so applying it also says "these nodes are healed".
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping, Sequence

__all__ = [
    "Grudge",
    "bridge",
    "complete",
    "from_value",
    "halves",
    "isolate",
    "isolate_random",
    "majorities_ring",
    "no_grudge",
    "one_way",
    "random_halves",
    "random_one_way",
    "to_value",
    "validate",
]

Grudge = Mapping[str, frozenset[str]]


def no_grudge(nodes: Sequence[str]) -> Grudge:
    """Everyone hears everyone."""
    return {n: frozenset() for n in nodes}


def complete(components: Sequence[Collection[str]]) -> Grudge:
    """Disjoint components; each node drops every node outside its own component."""
    everyone = [n for comp in components for n in comp]
    if len(set(everyone)) != len(everyone):
        raise ValueError("components must be disjoint")
    return {n: frozenset(everyone) - frozenset(comp) for comp in components for n in comp}


def halves(nodes: Sequence[str]) -> Grudge:
    """The first ``len // 2`` nodes (a minority) cut off from the rest."""
    _check(nodes, at_least=2)
    mid = len(nodes) // 2
    return complete([nodes[:mid], nodes[mid:]])


def random_halves(nodes: Sequence[str], rng: random.Random) -> Grudge:
    """A random minority cut off from the majority."""
    shuffled = list(nodes)
    rng.shuffle(shuffled)
    return halves(shuffled)


def isolate(nodes: Sequence[str], node: str) -> Grudge:
    """``node`` alone (e.g. the current leader) cut off from every other node."""
    _check(nodes, at_least=2)
    if node not in nodes:
        raise ValueError(f"cannot isolate {node!r}: not one of {', '.join(nodes)}")
    return complete([[node], [n for n in nodes if n != node]])


def isolate_random(nodes: Sequence[str], rng: random.Random) -> Grudge:
    """One random node cut off from the others."""
    _check(nodes, at_least=2)
    return isolate(nodes, rng.choice(list(nodes)))


def majorities_ring(nodes: Sequence[str], rng: random.Random) -> Grudge:
    """Every node hears a majority, but no two nodes hear the same majority.

    Nodes are placed on a shuffled ring; each hears itself and its nearest ring
    neighbours up to a majority (one more on the right when the count is odd). With
    5 nodes each hears its two neighbours; the grudge is symmetric when a majority
    minus one is even (n = 4, 5, 8, 9, ...).
    """
    _check(nodes, at_least=3)
    ring = list(nodes)
    rng.shuffle(ring)
    n = len(ring)
    others = n // 2  # a majority is n // 2 + 1, so each node hears this many others
    left = others // 2
    right = others - left
    grudge = {}
    for i, node in enumerate(ring):
        hears = {ring[(i + k) % n] for k in range(-left, right + 1)}
        grudge[node] = frozenset(ring) - hears
    return {node: grudge[node] for node in nodes}


def bridge(nodes: Sequence[str], rng: random.Random | None = None) -> Grudge:
    """Two halves that cannot hear each other, and one node that both hear and hears both."""
    _check(nodes, at_least=3)
    order = list(nodes)
    if rng is not None:
        rng.shuffle(order)
    mid = len(order) // 2
    left, middle, right = order[:mid], order[mid], order[mid + 1 :]
    grudge = {n: frozenset(right) for n in left}
    grudge.update({n: frozenset(left) for n in right})
    grudge[middle] = frozenset()
    return {n: grudge[n] for n in nodes}


def one_way(nodes: Sequence[str], *, senders: Collection[str]) -> Grudge:
    """Every node outside ``senders`` drops packets from ``senders``; not the other way."""
    unknown = set(senders) - set(nodes)
    if unknown:
        raise ValueError(f"unknown senders: {', '.join(sorted(unknown))}")
    cut = frozenset(senders)
    return {n: (frozenset() if n in cut else cut) for n in nodes}


def random_one_way(nodes: Sequence[str], rng: random.Random) -> Grudge:
    """A random minority whose packets the majority drops, while it still hears the majority."""
    _check(nodes, at_least=2)
    shuffled = list(nodes)
    rng.shuffle(shuffled)
    return one_way(nodes, senders=shuffled[: len(nodes) // 2])


def validate(grudge: Grudge, nodes: Sequence[str]) -> Grudge:
    """``grudge`` completed with empty sets, or ``ValueError`` naming an unknown node."""
    known = set(nodes)
    for node, drops in grudge.items():
        bad = ({node} | set(drops)) - known
        if bad:
            raise ValueError(f"grudge names unknown node(s): {', '.join(sorted(bad))}")
        if node in drops:
            raise ValueError(f"node {node} cannot drop itself")
    return {n: frozenset(grudge.get(n, ())) for n in nodes}


def to_value(grudge: Grudge) -> dict[str, list[str]]:
    """JSON-ready form: sorted lists, for op values and the timeline."""
    return {n: sorted(drops) for n, drops in sorted(grudge.items())}


def from_value(value: Mapping[str, Collection[str]]) -> Grudge:
    return {n: frozenset(drops) for n, drops in value.items()}


def _check(nodes: Sequence[str], *, at_least: int) -> None:
    if len(nodes) < at_least:
        raise ValueError(f"this partition needs at least {at_least} nodes, got {len(nodes)}")
    if len(set(nodes)) != len(nodes):
        raise ValueError("node names must be unique")
