"""The pure parts of rift_broker.cluster.groups: which __consumer_offsets partitions
a cluster node loads and unloads as its leadership moves, and which node coordinates
a group."""

from __future__ import annotations

from rift_broker.cluster.groups import coordinator_for, leadership_changes
from rift_broker.controller import (
    NO_LEADER,
    BrokerInfo,
    MetadataImage,
    PartitionInfo,
    TopicInfo,
)
from rift_broker.group import OFFSETS_TOPIC, partition_for


def test_gained_partitions_are_loaded_and_lost_ones_unloaded() -> None:
    assert leadership_changes({0: 1, 1: 1}, {1: 1, 2: 0}) == ([0], [2])


def test_unchanged_leadership_changes_nothing() -> None:
    assert leadership_changes({0: 3, 4: 1}, {0: 3, 4: 1}) == ([], [])


def test_a_partition_led_again_in_a_new_epoch_is_reloaded() -> None:
    # Another node led partition 0 in between and may have written to it.
    assert leadership_changes({0: 1, 1: 1}, {0: 3, 1: 1}) == ([0], [0])


def test_nothing_led_unloads_everything() -> None:
    assert leadership_changes({2: 0, 5: 7}, {}) == ([2, 5], [])


def _image(*, leader: int = 2, fenced: bool = False, partitions: int = 4) -> MetadataImage:
    image = MetadataImage()
    image.topics[OFFSETS_TOPIC] = TopicInfo(topic=OFFSETS_TOPIC, topic_id=1, partitions=partitions)
    for p in range(partitions):
        image.partitions[OFFSETS_TOPIC, p] = PartitionInfo(
            topic=OFFSETS_TOPIC,
            partition=p,
            replicas=(1, 2, 3),
            isr=(1, 2, 3),
            leader=leader if p == partition_for("g", partitions) else 1,
            leader_epoch=0,
            partition_epoch=0,
        )
    for b in (1, 2, 3):
        image.brokers[b] = BrokerInfo(
            broker=b,
            epoch=1,
            incarnation="x",
            host=f"10.0.0.{b}",
            port=9092,
            fenced=fenced and b == leader,
        )
    return image


def test_the_coordinator_is_the_leader_of_the_groups_offsets_partition() -> None:
    assert coordinator_for(_image(leader=2), "g") == (0, 2, "10.0.0.2", 9092)
    assert coordinator_for(_image(leader=3), "g") == (0, 3, "10.0.0.3", 9092)


def test_no_coordinator_without_the_topic_a_leader_or_an_unfenced_leader() -> None:
    not_available = (15, -1, "", -1)
    assert coordinator_for(MetadataImage(), "g") == not_available
    assert coordinator_for(_image(leader=NO_LEADER), "g") == not_available
    assert coordinator_for(_image(leader=2, fenced=True), "g") == not_available
    assert coordinator_for(_image(leader=7), "g") == not_available  # not registered
