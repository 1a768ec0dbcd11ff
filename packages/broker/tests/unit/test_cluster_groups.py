"""Which __consumer_offsets partitions a cluster node loads and unloads as its
leadership moves (the pure part of rift_broker.cluster.groups)."""

from __future__ import annotations

from rift_broker.cluster.groups import leadership_changes


def test_gained_partitions_are_loaded_and_lost_ones_unloaded() -> None:
    assert leadership_changes({0: 1, 1: 1}, {1: 1, 2: 0}) == ([0], [2])


def test_unchanged_leadership_changes_nothing() -> None:
    assert leadership_changes({0: 3, 4: 1}, {0: 3, 4: 1}) == ([], [])


def test_a_partition_led_again_in_a_new_epoch_is_reloaded() -> None:
    # Another node led partition 0 in between and may have written to it.
    assert leadership_changes({0: 1, 1: 1}, {0: 3, 1: 1}) == ([0], [0])


def test_nothing_led_unloads_everything() -> None:
    assert leadership_changes({2: 0, 5: 7}, {}) == ([2, 5], [])
