"""Group APIs on the wire: kio requests in, plain values out.

Builders take the negotiated version and return a kio request (fields a version
lacks are dropped by :func:`rift_client.protocol.make`); parsers turn a kio
response into the frozen values :mod:`rift_client.group` consumes, so the state
machine never sees kio. The consumer protocol's subscription and assignment
(the bytes inside JoinGroup / SyncGroup) are kio's ``ConsumerProtocolSubscription``
/ ``ConsumerProtocolAssignment`` behind an int16 version prefix, as every Kafka
client writes them. We write subscription v1 (topics, user_data, owned partitions)
and assignment v0; we read any version, decoding newer ones with the newest schema
we have (the formats only append fields).
"""

from __future__ import annotations

import importlib
import io
import struct
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from kio.schema.consumer_protocol_assignment.v0.data import (
    ConsumerProtocolAssignment as AssignmentV0,
)
from kio.schema.consumer_protocol_assignment.v0.data import TopicPartition as AssignedV0
from kio.schema.consumer_protocol_assignment.v3.data import (
    ConsumerProtocolAssignment as AssignmentV3,
)
from kio.schema.consumer_protocol_subscription.v1.data import (
    ConsumerProtocolSubscription as SubscriptionV1,
)
from kio.schema.consumer_protocol_subscription.v1.data import TopicPartition as OwnedV1
from kio.schema.types import TopicName
from kio.serial import entity_reader, entity_writer
from kio.static.primitive import i32

from rift_client import protocol
from rift_client.errors import ProtocolError
from rift_client.protocol import Api
from rift_client.types import TopicPartition

__all__ = [
    "CONSUMER_PROTOCOL",
    "Subscription",
    "encode_subscription",
    "decode_subscription",
    "encode_assignment",
    "decode_assignment",
]

CONSUMER_PROTOCOL = "consumer"
_VERSION = struct.Struct(">h")


# --- consumer protocol payloads ---------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscription:
    topics: tuple[str, ...]
    user_data: bytes | None = None
    owned: tuple[TopicPartition, ...] = ()


def _group(tps: Iterable[TopicPartition]) -> dict[str, list[int]]:
    by_topic: dict[str, list[int]] = defaultdict(list)
    for tp in tps:
        by_topic[tp.topic].append(tp.partition)
    return {t: sorted(ps) for t, ps in sorted(by_topic.items())}


def encode_subscription(sub: Subscription) -> bytes:
    body = SubscriptionV1(
        topics=tuple(sorted(sub.topics)),
        user_data=sub.user_data,
        owned_partitions=tuple(
            OwnedV1(topic=TopicName(t), partitions=tuple(i32(p) for p in ps))
            for t, ps in _group(sub.owned).items()
        ),
    )
    out = io.BytesIO()
    out.write(_VERSION.pack(1))
    entity_writer(SubscriptionV1)(out, body)
    return out.getvalue()


@cache
def _subscription_schema(version: int) -> Any:
    newest = min(max(version, 0), 3)
    module = importlib.import_module(f"kio.schema.consumer_protocol_subscription.v{newest}.data")
    return module.ConsumerProtocolSubscription


def decode_subscription(data: bytes) -> Subscription:
    try:
        (version,) = _VERSION.unpack_from(data, 0)
        body, _ = entity_reader(_subscription_schema(version))(data, 2)
    except Exception as exc:  # kio raises several types for malformed input
        raise ProtocolError(f"cannot decode a consumer subscription: {exc}") from exc
    owned = tuple(
        TopicPartition(topic=t.topic, partition=int(p))
        for t in getattr(body, "owned_partitions", ())
        for p in t.partitions
    )
    return Subscription(topics=tuple(body.topics), user_data=body.user_data, owned=owned)


def encode_assignment(tps: Iterable[TopicPartition]) -> bytes:
    body = AssignmentV0(
        assigned_partitions=tuple(
            AssignedV0(topic=TopicName(t), partitions=tuple(i32(p) for p in ps))
            for t, ps in _group(tps).items()
        ),
        user_data=None,
    )
    out = io.BytesIO()
    out.write(_VERSION.pack(0))
    entity_writer(AssignmentV0)(out, body)
    return out.getvalue()


def decode_assignment(data: bytes) -> tuple[TopicPartition, ...]:
    """The partitions in a SyncGroup answer; empty bytes mean nothing assigned."""
    if not data:
        return ()
    try:
        (version,) = _VERSION.unpack_from(data, 0)
        schema = AssignmentV0 if version <= 0 else AssignmentV3
        body: Any = entity_reader(schema)(data, 2)[0]
    except Exception as exc:
        raise ProtocolError(f"cannot decode a consumer assignment: {exc}") from exc
    return tuple(
        TopicPartition(topic=t.topic, partition=int(p))
        for t in body.assigned_partitions
        for p in t.partitions
    )


# --- requests -----------------------------------------------------------------------


def find_coordinator(version: int, group_id: str) -> Any:
    return protocol.request(Api.FIND_COORDINATOR, version, key=group_id, key_type=0)


def join_group(
    version: int,
    *,
    group_id: str,
    member_id: str,
    session_timeout: float,
    rebalance_timeout: float,
    protocols: Sequence[tuple[str, bytes]],
) -> Any:
    return protocol.request(
        Api.JOIN_GROUP,
        version,
        group_id=group_id,
        session_timeout=protocol.duration(session_timeout),
        rebalance_timeout=protocol.duration(rebalance_timeout),
        member_id=member_id,
        group_instance_id=None,
        protocol_type=CONSUMER_PROTOCOL,
        protocols=tuple(
            protocol.make(Api.JOIN_GROUP, version, "JoinGroupRequestProtocol", name=n, metadata=m)
            for n, m in protocols
        ),
    )


def sync_group(
    version: int,
    *,
    group_id: str,
    generation: int,
    member_id: str,
    assignments: Mapping[str, bytes],
) -> Any:
    return protocol.request(
        Api.SYNC_GROUP,
        version,
        group_id=group_id,
        generation_id=generation,
        member_id=member_id,
        group_instance_id=None,
        assignments=tuple(
            protocol.make(
                Api.SYNC_GROUP, version, "SyncGroupRequestAssignment", member_id=m, assignment=a
            )
            for m, a in sorted(assignments.items())
        ),
    )


def heartbeat(version: int, *, group_id: str, generation: int, member_id: str) -> Any:
    return protocol.request(
        Api.HEARTBEAT,
        version,
        group_id=group_id,
        generation_id=generation,
        member_id=member_id,
        group_instance_id=None,
    )


def leave_group(version: int, *, group_id: str, member_id: str) -> Any:
    if version < 3:  # one member, at the top level
        return protocol.request(Api.LEAVE_GROUP, version, group_id=group_id, member_id=member_id)
    identity = protocol.make(
        Api.LEAVE_GROUP, version, "MemberIdentity", member_id=member_id, group_instance_id=None
    )
    return protocol.request(Api.LEAVE_GROUP, version, group_id=group_id, members=(identity,))


def offset_commit(
    version: int,
    *,
    group_id: str,
    generation: int,
    member_id: str,
    offsets: Mapping[TopicPartition, tuple[int, int]],
) -> Any:
    """``offsets`` maps a partition to (offset, leader epoch or -1)."""
    by_topic: dict[str, list[Any]] = defaultdict(list)
    for tp, (offset, epoch) in sorted(offsets.items()):
        by_topic[tp.topic].append(
            protocol.make(
                Api.OFFSET_COMMIT,
                version,
                "OffsetCommitRequestPartition",
                partition_index=tp.partition,
                committed_offset=offset,
                committed_leader_epoch=epoch,
                committed_metadata="",
            )
        )
    return protocol.request(
        Api.OFFSET_COMMIT,
        version,
        group_id=group_id,
        generation_id_or_member_epoch=generation,
        member_id=member_id,
        group_instance_id=None,
        topics=tuple(
            protocol.make(
                Api.OFFSET_COMMIT, version, "OffsetCommitRequestTopic", name=t, partitions=tuple(ps)
            )
            for t, ps in by_topic.items()
        ),
    )


def offset_fetch(version: int, *, group_id: str, tps: Iterable[TopicPartition]) -> Any:
    grouped = _group(tps)
    return protocol.request(
        Api.OFFSET_FETCH,
        version,
        group_id=group_id,
        topics=tuple(
            protocol.make(
                Api.OFFSET_FETCH,
                version,
                "OffsetFetchRequestTopic",
                name=t,
                partition_indexes=tuple(i32(p) for p in ps),
            )
            for t, ps in grouped.items()
        ),
    )


# --- responses ----------------------------------------------------------------------


def commit_errors(response: Any) -> dict[TopicPartition, int]:
    return {
        TopicPartition(topic=t.name, partition=int(p.partition_index)): int(p.error_code)
        for t in response.topics
        for p in t.partitions
    }


def fetched_offsets(response: Any) -> tuple[int, dict[TopicPartition, tuple[int, int, int]]]:
    """``(top-level error, {tp: (error, offset or -1, leader epoch or -1)})``."""
    top = int(getattr(response, "error_code", 0))
    parts = {
        TopicPartition(topic=t.name, partition=int(p.partition_index)): (
            int(p.error_code),
            int(p.committed_offset),
            int(getattr(p, "committed_leader_epoch", -1)),
        )
        for t in response.topics
        for p in t.partitions
    }
    return top, parts
