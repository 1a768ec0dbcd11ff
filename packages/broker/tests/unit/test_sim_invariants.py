"""Each per-step invariant of the broker's simulation adapter fires on what it forbids."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from rift_broker.chaos_plugin._sim_invariants import Invariants
from rift_broker.raft import Entry
from rift_broker.replication.messages import Observed
from rift_chaos.sim.scenario import InvariantViolation


def node(
    name: str, *, term: int = 1, leader: bool = False, log: dict[int, int] | None = None, **rep: Any
) -> Any:
    terms = log or {}
    raft = SimpleNamespace(
        is_leader=leader,
        term=term,
        log=SimpleNamespace(offset=0, term_at=terms.get),
    )
    replicas = {}
    if rep:
        replicas[("t", 0)] = SimpleNamespace(
            leader=SimpleNamespace(leader_epoch=rep["epoch"], high_watermark=rep["hw"])
        )
    return SimpleNamespace(
        name=name, node=SimpleNamespace(raft=raft, replicas=SimpleNamespace(_replicas=replicas))
    )


def test_two_raft_leaders_in_one_term() -> None:
    inv = Invariants()
    inv.after_step(node("n1", term=3, leader=True))
    inv.after_step(node("n2", term=4, leader=True))
    with pytest.raises(InvariantViolation, match="two Raft leaders in term 3: n1 and n2"):
        inv.after_step(node("n2", term=3, leader=True))


def test_committed_metadata_never_changes_and_new_leaders_hold_it() -> None:
    inv = Invariants()
    inv.on_committed("n1", [Entry(term=1, index=1, command=b"a")])
    inv.on_committed("n2", [Entry(term=1, index=1, command=b"a")])
    with pytest.raises(InvariantViolation, match="committed metadata lost"):
        inv.on_committed("n3", [Entry(term=2, index=1, command=b"b")])
    with pytest.raises(InvariantViolation, match="lacks committed entry 1"):
        inv.after_step(node("n3", term=2, leader=True, log={1: 2}))


def test_one_partition_leader_per_epoch() -> None:
    inv = Invariants()
    inv.after_step(node("n1", epoch=0, hw=0))
    observed = Observed(kind="leader", topic="t", partition=0, value={"epoch": 0, "node": 2})
    with pytest.raises(InvariantViolation, match="two leaders of t/0 in epoch 0: n1 and n2"):
        inv.on_observed("n2", observed)


def test_the_high_watermark_never_moves_back_on_a_leader_within_an_epoch() -> None:
    inv = Invariants()
    leader = node("n1", epoch=2, hw=5)
    inv.after_step(leader)
    leader.node.replicas._replicas["t", 0].leader.high_watermark = 4
    with pytest.raises(InvariantViolation, match="moved back on leader n1 in epoch 2: 5 -> 4"):
        inv.after_step(leader)
