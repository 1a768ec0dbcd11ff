"""Each per-step invariant of the broker's simulation adapter fires on what it forbids."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from rift_broker.chaos_plugin._sim_invariants import Invariants
from rift_broker.log import LogConfig, PartitionLog
from rift_broker.raft import Entry
from rift_broker.records import build_batch
from rift_broker.replication.messages import Observed
from rift_broker.storage import MemoryStorage
from rift_chaos.sim.scenario import InvariantViolation


def partition_log(*values: int) -> PartitionLog:
    log = PartitionLog.open("/t-0", config=LogConfig(), storage=MemoryStorage(), now_ms=0)
    for value in values:
        log.append(build_batch([str(value).encode()]), leader_epoch=0, now_ms=0)
    return log


def node(
    name: str,
    *,
    term: int = 1,
    leader: bool = False,
    log: dict[int, int] | None = None,
    records: tuple[int, ...] = (),
    incarnation: int = 1,
    **rep: Any,
) -> Any:
    terms = log or {}
    raft = SimpleNamespace(
        is_leader=leader,
        term=term,
        log=SimpleNamespace(offset=0, term_at=terms.get),
    )
    replicas = {}
    if rep:
        state = SimpleNamespace(leader_epoch=rep["epoch"], high_watermark=rep["hw"])
        replicas[("t", 0)] = SimpleNamespace(
            leader=None if rep.get("follower") else state,
            follower=state if rep.get("follower") else None,
            log=partition_log(*records),
        )
    return SimpleNamespace(
        name=name,
        node=SimpleNamespace(
            raft=raft,
            replicas=SimpleNamespace(_replicas=replicas, partitions=lambda: list(replicas)),
            config=SimpleNamespace(incarnation=f"{name}-{incarnation}"),
        ),
    )


def test_two_raft_leaders_in_one_term() -> None:
    inv = Invariants()
    inv.after_step(node("n1", term=3, leader=True))
    inv.after_step(node("n2", term=4, leader=True))
    with pytest.raises(InvariantViolation, match="two Raft leaders in term 3: n1 and n2"):
        inv.after_step(node("n2", term=3, leader=True))


def test_committed_metadata_never_changes_and_new_leaders_hold_it() -> None:
    inv = Invariants()
    inv.on_committed("n1", [Entry(term=1, index=1, command=b"a")], term=1)
    inv.on_committed("n2", [Entry(term=1, index=1, command=b"a")], term=1)
    with pytest.raises(InvariantViolation, match="committed metadata lost"):
        inv.on_committed("n3", [Entry(term=2, index=1, command=b"b")], term=2)
    with pytest.raises(InvariantViolation, match=r"lacks entry 1 \(term 1\) committed in term 1"):
        inv.after_step(node("n3", term=2, leader=True, log={1: 2}))


def test_a_leader_of_an_older_term_elected_late_may_lack_what_a_later_term_committed() -> None:
    # n1 asked for votes in term 2 and was paused with a granted vote held up; n2 won
    # term 3 and committed entry 9 (of term 1, through its no-op). Resumed, n1 counts
    # the vote and leads term 2 without entry 9: legal - it is deposed at its first
    # append - and not the leader completeness the check is about.
    inv = Invariants()
    inv.on_committed("n2", [Entry(term=1, index=9, command=b"a")], term=3)
    inv.on_committed("n3", [Entry(term=1, index=9, command=b"a")], term=4)  # learnt later
    inv.after_step(node("n1", term=2, leader=True, log={}))
    with pytest.raises(InvariantViolation, match=r"lacks entry 9 \(term 1\) committed in term 3"):
        inv.after_step(node("n3", term=4, leader=True, log={9: 2}))


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


def test_records_below_a_high_watermark_are_the_same_on_every_replica() -> None:
    inv = Invariants()
    inv.after_step(node("n1", epoch=1, hw=2, records=(10, 11, 12)))
    inv.after_step(node("n2", epoch=1, hw=1, records=(10, 99), follower=True))  # 99 is above
    inv.after_step(node("n3", epoch=1, hw=3, records=(10, 11, 12), follower=True))
    with pytest.raises(InvariantViolation, match="t/0@1 is 99 on n2, not what n1 held there"):
        inv.after_step(node("n2", epoch=1, hw=2, records=(10, 99), follower=True))


def start_at(sim_node: Any, offset: int) -> Any:
    """Delete the records below ``offset`` of the node's t/0, as retention does."""
    log = sim_node.node.replicas._replicas["t", 0].log
    log.flush()
    log.advance_log_start(offset)
    return sim_node


def test_retention_may_delete_up_to_the_committed_offset_not_past_it() -> None:
    inv = Invariants()
    inv.after_step(start_at(node("n1", epoch=1, hw=2, records=(10, 11, 12, 13)), 2))
    # A follower whose own HW lags may start as far as any replica's HW went.
    inv.after_step(start_at(node("n2", epoch=1, hw=0, records=(10, 11, 12), follower=True), 2))
    with pytest.raises(InvariantViolation, match="log start of t/0 on n3 passed the committed"):
        inv.after_step(
            start_at(node("n3", epoch=1, hw=2, records=(10, 11, 12, 13), follower=True), 3)
        )


def test_acknowledged_records_below_the_retention_floor_are_not_lost() -> None:
    inv = Invariants()
    leader = start_at(node("n1", epoch=1, hw=4, records=(10, 11, 12, 13)), 2)
    inv.after_step(leader)
    acked = [("t", 0, 0, 10), ("t", 0, 1, 11), ("t", 0, 2, 12), ("t", 0, 3, 13)]
    assert inv.final([leader], acked) == []
    # At or above the floor an acknowledged record must still be there.
    assert inv.final([leader], [("t", 0, 3, 99)]) == [
        "acknowledged record 99 at t/0@3 is not in the final log of leader n1 (holds 13 there)"
    ]
    # Only deletions the invariants saw excuse anything: without them, offset 0 is lost.
    assert inv.final([leader], acked[:1]) == []
    fresh = Invariants()
    assert fresh.final([leader], acked[:1]) == [
        "acknowledged record 10 at t/0@0 is not in the final log of leader n1 (holds None there)"
    ]
