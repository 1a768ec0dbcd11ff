"""ListOffsets, OffsetForLeaderEpoch and InitProducerId."""

from __future__ import annotations

from typing import Any

from rift_broker.errors import InvalidRequest, KafkaError, UnknownTopicOrPartition
from rift_broker.log import LogError
from rift_broker.protocol import ApiKey, Request
from rift_broker.server._build import NO_THROTTLE, error_code, make, nested, response_class
from rift_broker.server.context import BrokerContext

__all__ = ["handle_list_offsets", "handle_offset_for_leader_epoch", "handle_init_producer_id"]

_EARLIEST = -2
_LATEST = -1


async def handle_list_offsets(ctx: BrokerContext, request: Request) -> Any:
    cls = response_class(ApiKey.LIST_OFFSETS, request.response_version)
    topics = []
    for topic in request.body.topics:
        parts = []
        for wanted in topic.partitions:
            partition = ctx.registry.partition(topic.name, wanted.partition_index)
            code, offset, timestamp, epoch = 0, -1, -1, -1
            try:
                if partition is None:
                    raise UnknownTopicOrPartition(f"{topic.name}-{wanted.partition_index}")
                epoch = partition.leader_epoch
                high_watermark = partition.high_watermark
                if wanted.timestamp == _EARLIEST:
                    offset = partition.log_start_offset
                elif wanted.timestamp == _LATEST:
                    offset = high_watermark
                elif wanted.timestamp < 0:
                    raise InvalidRequest(f"unsupported timestamp {wanted.timestamp}")
                else:
                    found = partition.log.offset_for_timestamp(wanted.timestamp)
                    if found is not None and found[0] < high_watermark:
                        offset, timestamp = found
            except KafkaError as e:
                code = e.code
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


async def handle_offset_for_leader_epoch(ctx: BrokerContext, request: Request) -> Any:
    cls = response_class(ApiKey.OFFSET_FOR_LEADER_EPOCH, request.response_version)
    topics = []
    for topic in request.body.topics:
        parts = []
        for wanted in topic.partitions:
            partition = ctx.registry.partition(topic.topic, wanted.partition)
            code, epoch, end_offset = 0, -1, -1
            try:
                if partition is None:
                    raise UnknownTopicOrPartition(f"{topic.topic}-{wanted.partition}")
                epoch, end_offset = partition.log.end_offset_for_epoch(wanted.leader_epoch)
                end_offset = min(end_offset, partition.high_watermark)
            except KafkaError as e:
                code = e.code
            except LogError as e:
                ctx.log.warning("OffsetForLeaderEpoch %s: %s", topic.topic, e)
                code = 56
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
