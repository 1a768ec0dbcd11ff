"""ListOffsets against partition leaders, shared by the consumer and the admin.

``timestamp`` is Kafka's: -2 for the earliest offset (log start), -1 for the latest
(the high watermark, or the last stable offset under read_committed), otherwise the
first offset whose timestamp is at least it. Stale-leadership errors refresh the
metadata and retry against the new leader until ``deadline`` seconds pass.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from rift_client import protocol
from rift_client.cluster import Cluster
from rift_client.errors import ClientError, ClientTimeout, LeaderNotAvailable, for_code
from rift_client.protocol import Api
from rift_client.types import TopicPartition

__all__ = ["EARLIEST", "LATEST", "list_offsets"]

EARLIEST = -2
LATEST = -1


async def list_offsets(
    cluster: Cluster,
    partitions: Iterable[TopicPartition],
    *,
    timestamp: int,
    deadline: float = 30.0,
    isolation_level: int = 0,
    backoff: float = 0.1,
) -> dict[TopicPartition, int]:
    """Offsets for ``partitions``; raises the first non-retriable error (definite)."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + deadline
    todo = set(partitions)
    found: dict[TopicPartition, int] = {}
    last_error: ClientError | None = None
    while todo:
        if loop.time() >= give_up:
            raise ClientTimeout(
                f"list offsets: no answer before the deadline ({last_error})", definite=True
            )
        by_leader: dict[int, list[TopicPartition]] = defaultdict(list)
        stale = False
        for tp in todo:
            info = cluster.leader(tp)
            if info is None or info.leader < 0:
                stale = True
                last_error = LeaderNotAvailable(f"no leader known for {tp}")
                continue
            by_leader[info.leader].append(tp)
        results = await asyncio.gather(
            *(
                _ask(cluster, node, tps, timestamp=timestamp, isolation_level=isolation_level)
                for node, tps in by_leader.items()
            ),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, ClientError):
                if not result.retriable:
                    raise result
                stale, last_error = True, result
            elif isinstance(result, BaseException):
                raise result
            else:
                for tp, (code, offset) in result.items():
                    if code == 0:
                        found[tp] = offset
                        todo.discard(tp)
                        continue
                    error = for_code(code, f"list offsets for {tp}", definite=True)
                    if not error.retriable:
                        raise error
                    stale, last_error = True, error
        if todo:
            if stale:
                try:
                    await cluster.refresh({tp.topic for tp in todo})
                except ClientError as exc:
                    last_error = exc
            await asyncio.sleep(backoff)
    return found


async def _ask(
    cluster: Cluster,
    node: int,
    tps: list[TopicPartition],
    *,
    timestamp: int,
    isolation_level: int,
) -> dict[TopicPartition, tuple[int, int]]:
    conn = await cluster.connection(node)
    version = conn.version(Api.LIST_OFFSETS)
    by_topic: dict[str, list[Any]] = defaultdict(list)
    for tp in tps:
        info = cluster.leader(tp)
        by_topic[tp.topic].append(
            protocol.make(
                Api.LIST_OFFSETS,
                version,
                "ListOffsetsPartition",
                partition_index=tp.partition,
                current_leader_epoch=info.epoch if info is not None else -1,
                timestamp=timestamp,
                max_num_offsets=1,
            )
        )
    body = protocol.request(
        Api.LIST_OFFSETS,
        version,
        replica_id=-1,
        isolation_level=isolation_level,
        topics=tuple(
            protocol.make(
                Api.LIST_OFFSETS, version, "ListOffsetsTopic", name=t, partitions=tuple(p)
            )
            for t, p in by_topic.items()
        ),
    )
    response = await conn.send(body, time_limit=cluster.request_timeout)
    answers: dict[TopicPartition, tuple[int, int]] = {}
    for topic in response.topics:
        for p in topic.partitions:
            tp = TopicPartition(topic=topic.name, partition=int(p.partition_index))
            answers[tp] = (int(p.error_code), int(p.offset))
    return answers
