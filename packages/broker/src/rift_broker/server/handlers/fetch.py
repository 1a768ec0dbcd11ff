"""Fetch: raw slices of the logs, long-polled until ``min_bytes`` or ``max_wait``.

The answer is assembled from whole batches as stored, never decoded. ``max_bytes``
bounds the whole response and ``partition_max_bytes`` each partition, except that
the first partition with data always gets at least one batch (KIP-74), so a batch
larger than the limits can still be consumed. If fewer than ``min_bytes`` are
available, the handler waits until some requested partition's high watermark
moves, ``max_wait`` elapses, or the broker begins to shut down, and reads again.

Fetch sessions (KIP-227) are not kept: every answer has session id 0, which tells a
client to send full fetch requests.
"""

from __future__ import annotations

import asyncio
from typing import Any

from rift_broker.errors import KafkaError, UnknownTopicOrPartition
from rift_broker.protocol import ApiKey, Request
from rift_broker.server._build import NO_THROTTLE, error_code, make, nested, response_class
from rift_broker.server.context import BrokerContext
from rift_broker.server.partition import Partition

__all__ = ["handle_fetch"]


def _read_all(ctx: BrokerContext, body: Any, cls: type) -> tuple[tuple[Any, ...], int, bool]:
    remaining = body.max_bytes if body.max_bytes > 0 else 0
    total = 0
    failed = False
    topics = []
    for topic in body.topics:
        parts = []
        for wanted in topic.partitions:
            partition = ctx.registry.partition(topic.topic, wanted.partition)
            code, records = 0, b""
            high_watermark = log_start = -1
            try:
                if partition is None:
                    raise UnknownTopicOrPartition(f"{topic.topic}-{wanted.partition}")
                high_watermark = partition.high_watermark
                log_start = partition.log_start_offset
                limit = min(wanted.partition_max_bytes, remaining)
                if total == 0 or limit > 0:
                    records = partition.read(wanted.fetch_offset, max_bytes=max(limit, 1))
            except KafkaError as e:
                code = e.code
                failed = True
            total += len(records)
            remaining = max(remaining - len(records), 0)
            parts.append(
                nested(
                    cls,
                    "PartitionData",
                    partition_index=wanted.partition,
                    error_code=error_code(code),
                    high_watermark=high_watermark,
                    last_stable_offset=high_watermark,
                    log_start_offset=log_start,
                    aborted_transactions=(),
                    preferred_read_replica=-1,
                    records=records,
                )
            )
        topics.append(
            nested(cls, "FetchableTopicResponse", topic=topic.topic, partitions=tuple(parts))
        )
    return tuple(topics), total, failed


def _partitions(ctx: BrokerContext, body: Any) -> list[Partition]:
    found = []
    for topic in body.topics:
        for wanted in topic.partitions:
            partition = ctx.registry.partition(topic.topic, wanted.partition)
            if partition is not None:
                found.append(partition)
    return found


async def handle_fetch(ctx: BrokerContext, request: Request) -> Any:
    body = request.body
    cls = response_class(ApiKey.FETCH, request.response_version)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(body.max_wait.total_seconds(), 0.0)
    while True:
        # Ask to be told about changes *before* reading, so none is missed in between.
        watched = [p.changed() for p in _partitions(ctx, body)]
        topics, total, failed = _read_all(ctx, body, cls)
        timeout = deadline - loop.time()
        if failed or total >= body.min_bytes or timeout <= 0 or ctx.closing.is_set() or not watched:
            break
        closing: asyncio.Future[Any] = asyncio.ensure_future(ctx.closing.wait())
        waits: list[asyncio.Future[Any]] = [*watched, closing]
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
    return make(
        cls,
        throttle_time=NO_THROTTLE,
        error_code=error_code(0),
        session_id=0,
        responses=topics,
    )
