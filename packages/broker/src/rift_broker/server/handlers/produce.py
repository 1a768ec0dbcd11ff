"""Produce: validate, dedup and append every partition's batches, then wait for durability.

All appends of a request happen synchronously, before the handler's first ``await``
(see :mod:`rift_broker.server.partition` for why that keeps pipelined requests in
order). Then the handler waits for the group-committed fsync of every partition it
appended to — for acks=1 and acks=all alike, since on one node the ISR is this node.
acks=0 returns ``None``: no response is written at all (or ``CLOSE_CONNECTION``
after an error, as Kafka does). ``__consumer_offsets`` belongs to the group
coordinator: producing to it gets INVALID_TOPIC_EXCEPTION, as in Kafka.
"""

from __future__ import annotations

import asyncio
from typing import Any

from rift_broker.errors import (
    InvalidRequest,
    InvalidRequiredAcks,
    InvalidTopic,
    KafkaError,
    UnknownTopicOrPartition,
)
from rift_broker.group import OFFSETS_TOPIC
from rift_broker.protocol import ApiKey, Request
from rift_broker.server._build import NO_THROTTLE, error_code, make, nested, response_class
from rift_broker.server.context import CLOSE_CONNECTION, BrokerContext
from rift_broker.server.partition import AppendOutcome, Partition

__all__ = ["handle_produce"]


async def handle_produce(ctx: BrokerContext, request: Request) -> Any:
    body = request.body
    acks = body.acks
    now_ms = ctx.now_ms()
    # (topic, partition index) -> outcome or error code, in request order.
    results: list[tuple[str, int, AppendOutcome | int]] = []
    waits: list[tuple[Partition, int]] = []
    for topic in body.topic_data:
        for data in topic.partition_data:
            outcome: AppendOutcome | int
            partition = ctx.registry.partition(topic.name, data.index)
            try:
                if acks not in (0, 1, -1):
                    raise InvalidRequiredAcks(f"acks={acks}: use 0, 1 or -1 (all)")
                if body.transactional_id is not None:
                    raise InvalidRequest("transactions are not supported")
                if partition is None:
                    raise UnknownTopicOrPartition(f"{topic.name}-{data.index}")
                if topic.name == OFFSETS_TOPIC:  # only the group coordinator writes it
                    raise InvalidTopic(f"cannot produce to the internal topic {OFFSETS_TOPIC}")
                outcome = partition.append(data.records or b"", acks=acks, now_ms=now_ms)
                waits.append((partition, outcome.end_offset))
            except KafkaError as e:
                ctx.log.debug("produce to %s-%d: %s", topic.name, data.index, e)
                outcome = e.code
            results.append((topic.name, data.index, outcome))
    durable = await asyncio.gather(
        *(partition.durable(end) for partition, end in waits), return_exceptions=True
    )
    if acks == 0:
        # No response; but like Kafka, drop the connection if anything failed, the
        # only way to tell an acks=0 client to refresh its metadata.
        errors = any(isinstance(outcome, int) for _, _, outcome in results)
        errors = errors or any(isinstance(result, BaseException) for result in durable)
        return CLOSE_CONNECTION if errors else None
    failed: dict[tuple[str, int], int] = {}
    for (partition, _), result in zip(waits, durable, strict=True):
        if isinstance(result, KafkaError):
            failed[(partition.topic, partition.index)] = result.code
        elif isinstance(result, BaseException):
            raise result
    cls = response_class(ApiKey.PRODUCE, request.response_version)
    by_topic: dict[str, list[Any]] = {}
    for name, index, outcome in results:
        code = outcome if isinstance(outcome, int) else failed.get((name, index), 0)
        ok = isinstance(outcome, AppendOutcome) and code == 0
        by_topic.setdefault(name, []).append(
            nested(
                cls,
                "PartitionProduceResponse",
                index=index,
                error_code=error_code(code),
                base_offset=outcome.base_offset if ok else -1,  # type: ignore[union-attr]
                log_append_time=None,
                log_start_offset=outcome.log_start_offset if ok else -1,  # type: ignore[union-attr]
                record_errors=(),
                error_message=None,
            )
        )
    topics = tuple(
        nested(cls, "TopicProduceResponse", name=name, partition_responses=tuple(parts))
        for name, parts in by_topic.items()
    )
    return make(cls, responses=topics, throttle_time=NO_THROTTLE)
