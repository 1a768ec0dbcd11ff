"""ListOffsets, OffsetForLeaderEpoch and InitProducerId."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rift_broker.errors import InvalidRequest, KafkaError, UnknownTopicOrPartition
from rift_broker.log import LogError
from rift_broker.protocol import ApiKey, Request
from rift_broker.server._build import NO_THROTTLE, error_code, make, nested, response_class
from rift_broker.server.context import BrokerContext

__all__ = ["handle_list_offsets", "handle_offset_for_leader_epoch", "handle_init_producer_id"]

_EARLIEST = -2
_LATEST = -1


# (code, offset, timestamp, leader epoch) for one partition of a ListOffsets request.
OffsetAnswer = tuple[int, int, int, int]
# (code, epoch, end offset) for one partition of an OffsetForLeaderEpoch request.
EpochAnswer = tuple[int, int, int]


def list_offsets_response(request: Request, answer: Callable[[str, int, int], OffsetAnswer]) -> Any:
    """A ListOffsets response from ``answer(topic, partition, timestamp)`` per partition.

    Shared by the single-node and the cluster handlers, which differ only in where
    the answer comes from.
    """
    cls = response_class(ApiKey.LIST_OFFSETS, request.response_version)
    topics = []
    for topic in request.body.topics:
        parts = []
        for wanted in topic.partitions:
            code, offset, timestamp, epoch = answer(
                topic.name, wanted.partition_index, wanted.timestamp
            )
            parts.append(
                nested(
                    cls,
                    "ListOffsetsPartitionResponse",
                    partition_index=wanted.partition_index,
                    error_code=error_code(code),
                    timestamp=timestamp,
                    offset=offset,
                    leader_epoch=epoch,
                )
            )
        topics.append(
            nested(cls, "ListOffsetsTopicResponse", name=topic.name, partitions=tuple(parts))
        )
    return make(cls, throttle_time=NO_THROTTLE, topics=tuple(topics))


def offset_for_leader_epoch_response(
    request: Request, answer: Callable[[str, int, int], EpochAnswer]
) -> Any:
    """An OffsetForLeaderEpoch response from ``answer(topic, partition, epoch)``."""
    cls = response_class(ApiKey.OFFSET_FOR_LEADER_EPOCH, request.response_version)
    topics = []
    for topic in request.body.topics:
        parts = []
        for wanted in topic.partitions:
            code, epoch, end_offset = answer(topic.topic, wanted.partition, wanted.leader_epoch)
            parts.append(
                nested(
                    cls,
                    "EpochEndOffset",
                    error_code=error_code(code),
                    partition=wanted.partition,
                    leader_epoch=epoch,
                    end_offset=end_offset,
                )
            )
        topics.append(
            nested(cls, "OffsetForLeaderTopicResult", topic=topic.topic, partitions=tuple(parts))
        )
    return make(cls, throttle_time=NO_THROTTLE, topics=tuple(topics))


async def handle_list_offsets(ctx: BrokerContext, request: Request) -> Any:
    def answer(topic: str, index: int, wanted: int) -> OffsetAnswer:
        partition = ctx.registry.partition(topic, index)
        try:
            if partition is None:
                raise UnknownTopicOrPartition(f"{topic}-{index}")
            epoch = partition.leader_epoch
            high_watermark = partition.high_watermark
            if wanted == _EARLIEST:
                return 0, partition.log_start_offset, -1, epoch
            if wanted == _LATEST:
                return 0, high_watermark, -1, epoch
            if wanted < 0:  # an unsupported special timestamp
                return InvalidRequest.code, -1, -1, epoch
            found = partition.log.offset_for_timestamp(wanted)
            if found is not None and found[0] < high_watermark:
                return 0, found[0], found[1], epoch
            return 0, -1, -1, epoch
        except KafkaError as e:
            return e.code, -1, -1, -1

    return list_offsets_response(request, answer)


async def handle_offset_for_leader_epoch(ctx: BrokerContext, request: Request) -> Any:
    def answer(topic: str, index: int, leader_epoch: int) -> EpochAnswer:
        partition = ctx.registry.partition(topic, index)
        try:
            if partition is None:
                raise UnknownTopicOrPartition(f"{topic}-{index}")
            epoch, end_offset = partition.log.end_offset_for_epoch(leader_epoch)
            return 0, epoch, min(end_offset, partition.high_watermark)
        except KafkaError as e:
            return e.code, -1, -1
        except LogError as e:
            ctx.log.warning("OffsetForLeaderEpoch %s: %s", topic, e)
            return 56, -1, -1

    return offset_for_leader_epoch_response(request, answer)


async def handle_init_producer_id(ctx: BrokerContext, request: Request) -> Any:
    cls = response_class(ApiKey.INIT_PRODUCER_ID, request.response_version)
    if request.body.transactional_id is not None:
        return make(
            cls,
            throttle_time=NO_THROTTLE,
            error_code=error_code(InvalidRequest.code),
            producer_id=-1,
            producer_epoch=-1,
        )
    producer_id = ctx.producer_ids.allocate()
    ctx.log.debug("allocated producer id %d", producer_id)
    return make(
        cls,
        throttle_time=NO_THROTTLE,
        error_code=error_code(0),
        producer_id=producer_id,
        producer_epoch=0,
    )
