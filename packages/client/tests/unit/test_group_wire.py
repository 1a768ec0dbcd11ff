"""Group requests at every version we speak, and the consumer protocol's payloads
checked against kafka-python's independent implementation."""

from __future__ import annotations

import pytest
from kafka.protocol.consumer.metadata import (
    ConsumerProtocolAssignment,
    ConsumerProtocolSubscription,
)

from rift_client import _group_wire as wire
from rift_client import errors, protocol
from rift_client.protocol import CLIENT_VERSIONS, Api
from rift_client.types import TopicPartition


def tp(topic: str, partition: int) -> TopicPartition:
    return TopicPartition(topic=topic, partition=partition)


def versions(api: Api) -> list[int]:
    low, high = CLIENT_VERSIONS[api]
    return list(range(low, high + 1))


def encodes(body: object) -> None:
    frame = protocol.encode_request(body, correlation_id=1, client_id="t")
    assert len(frame) > 10


@pytest.mark.parametrize("version", versions(Api.FIND_COORDINATOR))
def test_find_coordinator(version: int) -> None:
    encodes(wire.find_coordinator(version, "g"))


@pytest.mark.parametrize("version", versions(Api.JOIN_GROUP))
def test_join_group(version: int) -> None:
    encodes(
        wire.join_group(
            version,
            group_id="g",
            member_id="",
            session_timeout=10,
            rebalance_timeout=30,
            protocols=[("sticky", b"x"), ("range", b"y")],
        )
    )


@pytest.mark.parametrize("version", versions(Api.SYNC_GROUP))
def test_sync_group(version: int) -> None:
    encodes(
        wire.sync_group(version, group_id="g", generation=1, member_id="m", assignments={"m": b""})
    )


@pytest.mark.parametrize("version", versions(Api.HEARTBEAT))
def test_heartbeat(version: int) -> None:
    encodes(wire.heartbeat(version, group_id="g", generation=1, member_id="m"))


@pytest.mark.parametrize("version", versions(Api.LEAVE_GROUP))
def test_leave_group(version: int) -> None:
    body = wire.leave_group(version, group_id="g", member_id="m")
    encodes(body)
    if version >= 3:
        assert body.members[0].member_id == "m"
    else:
        assert body.member_id == "m"


@pytest.mark.parametrize("version", versions(Api.OFFSET_COMMIT))
def test_offset_commit(version: int) -> None:
    body = wire.offset_commit(
        version,
        group_id="g",
        generation=2,
        member_id="m",
        offsets={tp("a", 1): (10, 3), tp("a", 0): (5, -1), tp("b", 0): (0, -1)},
    )
    encodes(body)
    assert [t.name for t in body.topics] == ["a", "b"]
    assert [int(p.committed_offset) for p in body.topics[0].partitions] == [5, 10]


@pytest.mark.parametrize("version", versions(Api.OFFSET_FETCH))
def test_offset_fetch(version: int) -> None:
    encodes(wire.offset_fetch(version, group_id="g", tps=[tp("a", 1), tp("a", 0)]))


def test_subscription_is_read_by_kafka_python() -> None:
    data = wire.encode_subscription(
        wire.Subscription(topics=("b", "a"), user_data=b"u", owned=(tp("a", 2), tp("a", 1)))
    )
    theirs = ConsumerProtocolSubscription.decode(data)
    assert theirs.version == 1
    assert theirs.topics == ["a", "b"]
    assert theirs.user_data == b"u"
    assert [(t.topic, t.partitions) for t in theirs.owned_partitions] == [("a", [1, 2])]


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_we_read_every_subscription_version(version: int) -> None:
    kw: dict[str, object] = {"topics": ["t"], "user_data": b"q"}
    if version >= 1:
        kw["owned_partitions"] = [
            ConsumerProtocolSubscription.TopicPartition(topic="t", partitions=[4])
        ]
    if version >= 2:
        kw["generation_id"] = 3
    if version >= 3:
        kw["rack_id"] = "r1"
    data = ConsumerProtocolSubscription(version=version, **kw).encode()
    sub = wire.decode_subscription(data)
    assert sub.topics == ("t",)
    assert sub.user_data == b"q"
    assert sub.owned == ((tp("t", 4),) if version >= 1 else ())


@pytest.mark.parametrize("version", [0, 1, 3])
def test_assignments_both_ways(version: int) -> None:
    ours = wire.encode_assignment([tp("t", 3), tp("s", 0), tp("t", 1)])
    theirs = ConsumerProtocolAssignment.decode(ours)
    assert theirs.partitions() == [("s", 0), ("t", 1), ("t", 3)]
    data = ConsumerProtocolAssignment(
        version=version,
        assigned_partitions=[ConsumerProtocolAssignment.TopicPartition(topic="t", partitions=[5])],
        user_data=None,
    ).encode()
    assert wire.decode_assignment(data) == (tp("t", 5),)
    assert wire.decode_assignment(b"") == ()


def test_garbage_payloads_are_protocol_errors() -> None:
    with pytest.raises(errors.ProtocolError):
        wire.decode_subscription(b"\x00\x00\x00\x09ab")
    with pytest.raises(errors.ProtocolError):
        wire.decode_assignment(b"\x00\x00\x00\x00\x00\x09")
