"""Follower truncation by leader epoch (KIP-101 / KIP-279 scenarios)."""

from __future__ import annotations

import pytest

from rift_broker.replication import EpochEndOffset, FollowerPartition, truncation_offset


def epoch_lookup(epochs: list[int]):
    """OffsetForLeaderEpoch over a log given as the epoch of each offset."""

    def lookup(epoch: int) -> EpochEndOffset:
        known = sorted(set(epochs))
        below = [e for e in known if e <= epoch]
        if not below:
            return EpochEndOffset(epoch=-1, end_offset=-1)  # Kafka's UNDEFINED answer
        chosen = below[-1]
        later = [i for i, e in enumerate(epochs) if e > chosen]
        return EpochEndOffset(epoch=chosen, end_offset=later[0] if later else len(epochs))

    return lookup


def truncate(follower: list[int], leader: list[int]) -> int:
    latest = follower[-1] if follower else -1
    answer = epoch_lookup(leader)(latest)
    return truncation_offset(
        local_log_end_offset=len(follower),
        answer=answer,
        local_end_for_epoch=epoch_lookup(follower),
    )


def test_kip101_follower_keeps_committed_records_above_its_stale_hw() -> None:
    # Both replicas hold offsets 0..1 of epoch 0; the follower's HW said 1.
    # Truncating to the HW would drop offset 1, which the new leader also has.
    assert truncate([0, 0], [0, 0, 1]) == 2


def test_divergent_tail_of_an_old_epoch_is_cut() -> None:
    # The follower led epoch 1 and appended offsets 2..3 that nobody else got;
    # the new leader (epoch 2) never saw epoch 1.
    assert truncate([0, 0, 1, 1], [0, 0, 2, 2, 2]) == 2


def test_leader_answers_older_epoch_follower_uses_its_own_end_of_that_epoch() -> None:
    # KIP-279: follower has epochs 0,0,1 ; leader has 0,0,0,2. Leader's answer for
    # epoch 1 is (0, 3); the follower's epoch 0 ends at 2, so only 2 records agree.
    assert truncate([0, 0, 1], [0, 0, 0, 2]) == 2


def test_follower_that_is_a_prefix_keeps_everything() -> None:
    assert truncate([0, 1], [0, 1, 1, 3]) == 2


def test_empty_leader_history_truncates_to_its_answer() -> None:
    assert truncate([3, 3], []) == 0


def test_follower_partition_requires_truncation_before_fetch() -> None:
    f = FollowerPartition(topic="t", partition=0, leader=2, leader_epoch=4, log_end_offset=5)
    with pytest.raises(ValueError, match="truncate"):
        f.on_fetched(log_end_offset=6, leader_high_watermark=6)
    f.on_truncated(log_end_offset=3)
    f.on_fetched(log_end_offset=8, leader_high_watermark=6)
    assert f.high_watermark == 6
    f.on_fetched(log_end_offset=9, leader_high_watermark=20)
    assert f.high_watermark == 9
    assert f.fetch_offset == 9
