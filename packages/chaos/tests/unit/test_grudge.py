from __future__ import annotations

import random

import pytest

from rift_chaos.nemesis import grudge as g

NODES = ["n1", "n2", "n3", "n4", "n5"]


def hears(grudge: g.Grudge, node: str) -> set[str]:
    return set(NODES) - set(grudge[node])


def test_halves_cuts_a_minority_from_a_majority() -> None:
    grudge = g.halves(NODES)
    assert grudge["n1"] == {"n3", "n4", "n5"}
    assert grudge["n5"] == {"n1", "n2"}


def test_complete_rejects_overlapping_components() -> None:
    with pytest.raises(ValueError, match="disjoint"):
        g.complete([["n1", "n2"], ["n2", "n3"]])


def test_random_halves_is_seeded() -> None:
    assert g.random_halves(NODES, random.Random(7)) == g.random_halves(NODES, random.Random(7))
    sizes = sorted(len(d) for d in g.random_halves(NODES, random.Random(1)).values())
    assert sizes == [2, 2, 2, 3, 3]


def test_isolate_names_the_node() -> None:
    grudge = g.isolate(NODES, "n3")
    assert grudge["n3"] == {"n1", "n2", "n4", "n5"}
    assert all(grudge[n] == {"n3"} for n in NODES if n != "n3")
    with pytest.raises(ValueError, match="not one of"):
        g.isolate(NODES, "n9")


def test_isolate_random_isolates_exactly_one() -> None:
    grudge = g.isolate_random(NODES, random.Random(3))
    assert sum(1 for d in grudge.values() if len(d) == 4) == 1


@pytest.mark.parametrize("n", [3, 4, 5, 7])
def test_majorities_ring_every_node_hears_a_majority_and_majorities_differ(n: int) -> None:
    nodes = [f"n{i}" for i in range(1, n + 1)]
    grudge = g.majorities_ring(nodes, random.Random(11))
    seen = [frozenset(set(nodes) - set(grudge[x])) for x in nodes]
    assert all(len(s) == n // 2 + 1 for s in seen)
    assert all(x in s for x, s in zip(nodes, seen, strict=True))
    assert len(set(seen)) == n


def test_majorities_ring_is_symmetric_for_five() -> None:
    grudge = g.majorities_ring(NODES, random.Random(5))
    for a in NODES:
        for b in grudge[a]:
            assert a in grudge[b]


def test_bridge_has_one_node_in_both_halves() -> None:
    grudge = g.bridge(NODES)
    assert grudge["n3"] == frozenset()
    assert grudge["n1"] == {"n4", "n5"}
    assert grudge["n4"] == {"n1", "n2"}
    shuffled = g.bridge(NODES, random.Random(2))
    assert sum(1 for d in shuffled.values() if not d) == 1


def test_one_way_drops_only_in_one_direction() -> None:
    grudge = g.one_way(NODES, senders=["n1"])
    assert grudge["n1"] == frozenset()
    assert all(grudge[n] == {"n1"} for n in NODES[1:])
    random_grudge = g.random_one_way(NODES, random.Random(9))
    senders = {n for n, d in random_grudge.items() if not d}
    assert len(senders) == 2  # a minority the majority stops hearing; it still hears all
    assert all(d == senders for n, d in random_grudge.items() if n not in senders)
    with pytest.raises(ValueError, match="unknown senders"):
        g.one_way(NODES, senders=["x"])


def test_too_few_nodes_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="at least 3 nodes"):
        g.majorities_ring(["n1", "n2"], random.Random(0))


def test_validate_and_value_round_trip() -> None:
    grudge = g.validate({"n1": frozenset({"n2"})}, NODES)
    assert grudge["n5"] == frozenset()
    assert g.from_value(g.to_value(grudge)) == grudge
    with pytest.raises(ValueError, match="unknown node"):
        g.validate({"n1": frozenset({"zz"})}, NODES)
    with pytest.raises(ValueError, match="itself"):
        g.validate({"n1": frozenset({"n1"})}, NODES)
    assert g.no_grudge(NODES) == {n: frozenset() for n in NODES}
