"""Metadata records and the image: encoding round trips, apply rules, snapshots.

The stateful test compares ``MetadataImage`` with a plain-dict model under random
record sequences, and checks that snapshot/restore at any point loses nothing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from rift_broker.controller import (
    NO_LEADER,
    CreateTopic,
    FenceBroker,
    MetadataImage,
    MetadataRecord,
    PartitionChange,
    PartitionRecord,
    RegisterBroker,
    UnfenceBroker,
    decode_record,
    decode_records,
    encode_record,
    encode_records,
)
from rift_broker.raft import NOOP

ids = st.integers(0, 5)
small = st.integers(0, 6)
topics = st.sampled_from(["a", "b", "c"])
isrs = st.lists(ids, max_size=4, unique=True).map(tuple)

records: st.SearchStrategy[MetadataRecord] = st.one_of(
    st.builds(
        RegisterBroker,
        broker=ids,
        epoch=small,
        incarnation=st.text(max_size=4),
        host=st.sampled_from(["h1", "127.0.0.1"]),
        port=st.integers(1, 65535),
        rack=st.none() | st.just("r1"),
    ),
    st.builds(FenceBroker, broker=ids, epoch=small),
    st.builds(UnfenceBroker, broker=ids, epoch=small),
    st.builds(
        CreateTopic,
        topic=topics,
        topic_id=small,
        partitions=st.integers(1, 3),
        configs=st.lists(st.tuples(st.just("min.insync.replicas"), st.just("2")), max_size=1).map(
            tuple
        ),
    ),
    st.builds(
        PartitionRecord,
        topic=topics,
        partition=st.integers(0, 2),
        replicas=isrs,
        isr=isrs,
        leader=ids | st.just(NO_LEADER),
        leader_epoch=small,
        partition_epoch=small,
    ),
    st.builds(
        PartitionChange,
        topic=topics,
        partition=st.integers(0, 2),
        leader=ids | st.just(NO_LEADER),
        leader_epoch=small,
        isr=isrs,
        partition_epoch=small,
    ),
)


@given(records)
def test_records_round_trip(record: MetadataRecord) -> None:
    data = encode_record(record)
    assert decode_record(data) == record
    assert encode_record(decode_record(data)) == data  # stable bytes


@pytest.mark.parametrize(
    "data",
    [b"", b"[]", b"{}", b'{"type":"Nope"}', b'{"type":"FenceBroker","broker":1}', b"\xff"],
)
def test_decode_rejects_garbage(data: bytes) -> None:
    with pytest.raises(ValueError, match="record"):
        decode_record(data)


@given(st.lists(records, min_size=1, max_size=4))
def test_a_decisions_records_round_trip_as_one_command(batch: list[MetadataRecord]) -> None:
    data = encode_records(batch)
    assert decode_records(data) == batch
    if len(batch) == 1:
        assert data == encode_record(batch[0])  # a lone record is stored as before


@pytest.mark.parametrize("data", [b"[]", b"[1]", b"[{}]", b"[{", b'[{"type":"Nope"}]'])
def test_decode_records_rejects_garbage(data: bytes) -> None:
    with pytest.raises(ValueError, match="record"):
        decode_records(data)
    with pytest.raises(ValueError, match="no records"):
        encode_records([])


def register(broker: int, epoch: int) -> RegisterBroker:
    return RegisterBroker(broker=broker, epoch=epoch, incarnation="i", host="h", port=9092)


def test_apply_rules() -> None:
    image = MetadataImage()
    assert image.apply(register(1, 1))
    assert image.brokers[1].fenced  # a new registration starts fenced
    assert image.apply(UnfenceBroker(broker=1, epoch=1))
    assert image.live_brokers() == {1}
    assert not image.apply(register(1, 1))  # not a newer epoch
    assert not image.apply(FenceBroker(broker=1, epoch=0))  # stale broker epoch
    assert image.apply(CreateTopic(topic="t", topic_id=1, partitions=1))
    assert not image.apply(CreateTopic(topic="t", topic_id=2, partitions=5))
    first = PartitionRecord(topic="t", partition=0, replicas=(1,), isr=(1,), leader=1)
    assert image.apply(first)
    assert not image.apply(first)
    assert not image.apply(
        PartitionRecord(topic="u", partition=0, replicas=(1,), isr=(1,), leader=1)
    )
    change = PartitionChange(
        topic="t", partition=0, leader=NO_LEADER, leader_epoch=1, isr=(1,), partition_epoch=1
    )
    assert image.apply(change)
    assert not image.apply(change)  # partition epoch must be exactly the next one
    skip = PartitionChange(
        topic="t", partition=0, leader=1, leader_epoch=2, isr=(1,), partition_epoch=3
    )
    assert not image.apply(skip)
    back = PartitionChange(
        topic="t", partition=0, leader=1, leader_epoch=0, isr=(1,), partition_epoch=2
    )
    assert not image.apply(back)  # leader epochs never go back
    assert image.partitions_of("t")[0].leader == NO_LEADER
    assert image.partitions_of("nope") == []


def test_apply_entry_skips_noops_and_replays() -> None:
    image = MetadataImage()
    assert not image.apply_entry(1, NOOP)
    assert image.apply_entry(2, encode_record(register(1, 1)))
    assert not image.apply_entry(2, encode_record(register(1, 2)))  # already applied
    assert image.applied_index == 2
    assert image.brokers[1].epoch == 1


def test_apply_entry_applies_all_records_of_a_decision_in_order() -> None:
    image = MetadataImage()
    topic = CreateTopic(topic="t", topic_id=1, partitions=1)
    partition = PartitionRecord(topic="t", partition=0, replicas=(1,), isr=(1,), leader=1)
    assert image.apply_entry(1, encode_records([topic, partition]))
    assert image.partitions_of("t")[0].leader == 1
    assert image.applied_index == 1
    assert not image.apply_entry(2, encode_records([topic, partition]))  # changes nothing


class ImageVersusModel(RuleBasedStateMachine):
    """A dict model of the apply rules, written independently of the image."""

    def __init__(self) -> None:
        super().__init__()
        self.image = MetadataImage()
        self.brokers: dict[int, tuple[int, bool]] = {}
        self.topics: dict[str, int] = {}
        self.partitions: dict[tuple[str, int], tuple[int, int, int, tuple[int, ...]]] = {}
        self.index = 0

    @rule(record=records)
    def apply(self, record: MetadataRecord) -> None:
        self.index += 1
        self.image.apply_entry(self.index, encode_record(record))
        match record:
            case RegisterBroker(broker=b, epoch=e) if (
                b not in self.brokers or e > self.brokers[b][0]
            ):
                self.brokers[b] = (e, True)
            case FenceBroker(broker=b, epoch=e) | UnfenceBroker(broker=b, epoch=e) if (
                b in self.brokers and self.brokers[b][0] == e
            ):
                self.brokers[b] = (e, isinstance(record, FenceBroker))
            case CreateTopic(topic=t, partitions=n) if t not in self.topics:
                self.topics[t] = n
            case PartitionRecord(topic=t, partition=p) if (
                t in self.topics and (t, p) not in self.partitions
            ):
                self.partitions[t, p] = (
                    record.leader,
                    record.leader_epoch,
                    record.partition_epoch,
                    record.isr,
                )
            case PartitionChange(topic=t, partition=p) if (
                (t, p) in self.partitions
                and record.partition_epoch == self.partitions[t, p][2] + 1
                and record.leader_epoch >= self.partitions[t, p][1]
            ):
                self.partitions[t, p] = (
                    record.leader,
                    record.leader_epoch,
                    record.partition_epoch,
                    record.isr,
                )
            case _:
                pass

    @rule()
    def snapshot_and_restore(self) -> None:
        restored = MetadataImage.restore(self.image.snapshot())
        assert restored == self.image
        self.image = restored

    @invariant()
    def matches_model(self) -> None:
        assert {b: (i.epoch, i.fenced) for b, i in self.image.brokers.items()} == self.brokers
        assert {t: i.partitions for t, i in self.image.topics.items()} == self.topics
        assert {
            k: (p.leader, p.leader_epoch, p.partition_epoch, p.isr)
            for k, p in self.image.partitions.items()
        } == self.partitions
        assert self.image.applied_index == self.index


TestImageVersusModel = ImageVersusModel.TestCase
