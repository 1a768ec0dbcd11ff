"""The leader's ISR and high-watermark bookkeeping (rift_broker.replication)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rift_broker.replication import AckDecision, LeaderPartition


def leader(*, isr=(1, 2, 3), leo=0, hw=0, min_isr=2, lag=1000, now=0) -> LeaderPartition:
    return LeaderPartition(
        topic="t",
        partition=0,
        node=1,
        leader_epoch=5,
        partition_epoch=7,
        replicas=(1, 2, 3),
        isr=isr,
        log_end_offset=leo,
        high_watermark=hw,
        min_insync_replicas=min_isr,
        replica_lag_time_max_ms=lag,
        now_ms=now,
    )


def test_high_watermark_is_minimum_leo_of_the_isr() -> None:
    p = leader()
    assert not p.on_local_append(log_end_offset=10)
    assert p.high_watermark == 0
    p.on_follower_fetch(follower=2, fetch_offset=10, now_ms=1)
    assert p.high_watermark == 0  # node 3 still holds nothing
    moved, _ = p.on_follower_fetch(follower=3, fetch_offset=4, now_ms=1)
    assert moved
    assert p.high_watermark == 4


def test_high_watermark_never_moves_back() -> None:
    p = leader(leo=10)
    p.on_follower_fetch(follower=2, fetch_offset=10, now_ms=1)
    p.on_follower_fetch(follower=3, fetch_offset=10, now_ms=1)
    assert p.high_watermark == 10
    # a restarted follower fetching from an earlier offset does not pull the HW back
    p.on_follower_fetch(follower=3, fetch_offset=2, now_ms=2)
    assert p.high_watermark == 10


def test_acks_all_waits_for_the_isr_and_respects_min_isr() -> None:
    p = leader(leo=0)
    p.on_local_append(log_end_offset=5)
    assert p.ack_decision(last_offset=4) is AckDecision.WAIT
    p.on_follower_fetch(follower=2, fetch_offset=5, now_ms=1)
    assert p.ack_decision(last_offset=4) is AckDecision.WAIT
    p.on_follower_fetch(follower=3, fetch_offset=5, now_ms=1)
    assert p.ack_decision(last_offset=4) is AckDecision.ACK


def test_lagging_follower_is_proposed_out_then_hw_advances_when_committed() -> None:
    p = leader(leo=0, lag=100)
    p.on_local_append(log_end_offset=3)
    p.on_follower_fetch(follower=2, fetch_offset=3, now_ms=10)
    assert p.tick(now_ms=50) is None
    change = p.tick(now_ms=101)
    assert change is not None
    assert change.isr == (1, 2)
    assert (change.leader_epoch, change.partition_epoch) == (5, 7)
    # until the controller commits the change, the old ISR still holds the HW back
    assert p.high_watermark == 0
    assert p.tick(now_ms=500) is None  # one proposal in flight at a time
    assert p.apply_isr(isr=(1, 2), partition_epoch=8)
    assert p.high_watermark == 3
    assert p.ack_decision(last_offset=2) is AckDecision.ACK


def test_shrink_below_min_isr_fails_waiting_produces() -> None:
    p = leader(leo=0, isr=(1, 2), min_isr=2)
    p.on_local_append(log_end_offset=1)
    assert p.ack_decision(last_offset=0) is AckDecision.WAIT
    p.apply_isr(isr=(1,), partition_epoch=8)
    assert p.ack_decision(last_offset=0) is AckDecision.NOT_ENOUGH_REPLICAS
    assert not p.can_accept_acks_all()


def test_caught_up_follower_is_proposed_back_in() -> None:
    # This leader's epoch starts at offset 4 (it had 4 records when elected).
    p = leader(isr=(1, 2), leo=4, hw=2)
    _, change = p.on_follower_fetch(follower=3, fetch_offset=3, now_ms=2)
    assert change is None  # above the HW but not yet into this leader's epoch
    p.on_local_append(log_end_offset=6)
    p.on_follower_fetch(follower=2, fetch_offset=6, now_ms=3)
    assert p.high_watermark == 6
    _, change = p.on_follower_fetch(follower=3, fetch_offset=5, now_ms=4)
    assert change is None  # does not hold everything below the HW yet
    _, change = p.on_follower_fetch(follower=3, fetch_offset=6, now_ms=5)
    assert change is not None
    assert change.isr == (1, 2, 3)


def test_stale_partition_epoch_is_ignored() -> None:
    p = leader()
    assert not p.apply_isr(isr=(1,), partition_epoch=6)
    assert p.isr == (1, 2, 3)


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="not a replica"):
        LeaderPartition(
            topic="t", partition=0, node=9, leader_epoch=0, partition_epoch=0,
            replicas=(1, 2), isr=(1, 2), log_end_offset=0, high_watermark=0,
            min_insync_replicas=1, replica_lag_time_max_ms=10, now_ms=0,
        )  # fmt: skip
    with pytest.raises(ValueError, match="not a replica"):
        leader().on_follower_fetch(follower=7, fetch_offset=0, now_ms=0)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["append", "fetch2", "fetch3", "tick", "commit"]),
            st.integers(0, 20),
            st.integers(0, 300),
        ),
        max_size=60,
    )
)
def test_hw_is_monotonic_and_never_exceeds_what_the_isr_holds(steps) -> None:
    """Against a model: HW <= every ISR member's LEO (as last reported) and never drops."""
    p = leader(leo=0, lag=100)
    now = 0
    leo = 0
    held = {2: 0, 3: 0}
    last_hw = 0
    for action, n, dt in steps:
        now += dt
        if action == "append":
            leo += n
            p.on_local_append(log_end_offset=leo)
        elif action in ("fetch2", "fetch3"):
            node = 2 if action == "fetch2" else 3
            offset = min(n + held[node], leo)
            held[node] = offset
            p.on_follower_fetch(follower=node, fetch_offset=offset, now_ms=now)
        elif action == "tick":
            p.tick(now_ms=now)
        elif action == "commit" and p.pending is not None:
            p.apply_isr(isr=p.pending.isr, partition_epoch=p.partition_epoch + 1)
        assert p.high_watermark >= last_hw
        # Above what it was, the HW is bounded by what the ISR holds (as reported).
        held_by_isr = min([leo, *(held[r] for r in p.maximal_isr() if r != 1)])
        assert p.high_watermark <= leo
        assert p.high_watermark <= max(held_by_isr, last_hw)
        last_hw = p.high_watermark
