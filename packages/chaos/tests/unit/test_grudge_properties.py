"""Properties every partition shape must have, for any node list and seed."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from rift_chaos.nemesis import grudge as g

node_lists = st.integers(min_value=3, max_value=9).map(lambda n: [f"n{i}" for i in range(1, n + 1)])
seeds = st.integers(min_value=0, max_value=2**32)

SHAPES = {
    "halves": lambda nodes, rng: g.halves(nodes),
    "random-halves": g.random_halves,
    "random-node": g.isolate_random,
    "majorities-ring": g.majorities_ring,
    "bridge": g.bridge,
    "one-way": g.random_one_way,
}


@given(nodes=node_lists, seed=seeds, shape=st.sampled_from(sorted(SHAPES)))
def test_every_shape_is_a_valid_grudge_that_cuts_something(nodes, seed, shape) -> None:
    grudge = SHAPES[shape](nodes, random.Random(seed))
    assert set(grudge) == set(nodes)
    assert g.validate(grudge, nodes) == grudge
    assert any(grudge.values())
    assert SHAPES[shape](nodes, random.Random(seed)) == grudge


@given(nodes=node_lists, seed=seeds)
def test_majorities_ring_gives_every_node_a_distinct_majority(nodes, seed) -> None:
    grudge = g.majorities_ring(nodes, random.Random(seed))
    heard = {frozenset(set(nodes) - grudge[n]) for n in nodes}
    assert len(heard) == len(nodes)
    assert all(len(h) > len(nodes) // 2 for h in heard)


@given(nodes=node_lists, seed=seeds)
def test_random_halves_split_into_floor_and_ceiling_halves(nodes, seed) -> None:
    grudge = g.random_halves(nodes, random.Random(seed))
    # Each node hears its own component: n // 2 nodes on one side, the rest on the other.
    heard = sorted(len(nodes) - len(grudge[n]) for n in nodes)
    small, large = len(nodes) // 2, len(nodes) - len(nodes) // 2
    assert heard == [small] * small + [large] * large
