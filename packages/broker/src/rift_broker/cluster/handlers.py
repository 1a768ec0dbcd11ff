"""Kafka request handlers of a cluster node: the same APIs, answered from the cluster.

They differ from the single-node handlers (``rift_broker.server.handlers``) in
where answers come from: Metadata from the committed metadata image (every
registered broker, each partition's leader, epoch, replicas and ISR); Produce,
Fetch, ListOffsets and OffsetForLeaderEpoch from the replica manager, on the
partition's leader only (others answer NOT_LEADER_OR_FOLLOWER, which sends
clients to refresh metadata); CreateTopics through the active controller;
FindCoordinator from the leader of the group's ``__consumer_offsets`` partition. The
other group APIs are the single node's, on the node's group driver.
Consumers never read past the high watermark.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from rift_broker.cluster.driver import ClusterDriver
from rift_broker.cluster.groups import CoordinatorLocator
from rift_broker.controller import NO_LEADER, CreateTopicRequest
from rift_broker.errors import InvalidTopic
from rift_broker.group import OFFSETS_TOPIC
from rift_broker.protocol import ApiKey, Request
from rift_broker.records import InvalidBatchError, iter_batches
from rift_broker.replication.messages import (
    NONE,
    NOT_LEADER_OR_FOLLOWER,
    UNKNOWN_TOPIC_OR_PARTITION,
)
from rift_broker.server._build import NO_THROTTLE, error_code, make, nested, response_class
from rift_broker.server.context import CLOSE_CONNECTION, BrokerContext
from rift_broker.server.handlers import SINGLE_NODE_HANDLERS
from rift_broker.server.handlers.groups import find_coordinator_response
from rift_broker.server.handlers.offsets import (
    EpochAnswer,
    OffsetAnswer,
    list_offsets_response,
    offset_for_leader_epoch_response,
)

CORRUPT_MESSAGE = 2
INVALID_REQUEST = 42
INVALID_REQUIRED_ACKS = 21
REQUEST_TIMED_OUT = 7
_EARLIEST, _LATEST = -2, -1


@dataclass(slots=True, kw_only=True)
class ClusterContext(BrokerContext):
    cluster: ClusterDriver
    coordinators: CoordinatorLocator


def _cluster(ctx: BrokerContext) -> ClusterDriver:
    assert isinstance(ctx, ClusterContext)
    return ctx.cluster


async def handle_metadata(ctx: BrokerContext, request: Request) -> Any:
    cluster = _cluster(ctx)
    image = cluster.node.image
    cls = response_class(ApiKey.METADATA, request.response_version)
    requested = request.body.topics
    names = sorted(image.topics) if not requested else [t.name for t in requested]
    topics = []
    for name in names:
        info = image.topics.get(name)
        parts = []
        if info is not None:
            for p in image.partitions_of(name):
                leader = p.leader if p.leader != NO_LEADER else -1
                parts.append(
                    nested(
                        cls,
                        "MetadataResponsePartition",
                        error_code=error_code(NONE if leader >= 0 else 5),  # LEADER_NOT_AVAILABLE
                        partition_index=p.partition,
                        leader_id=leader,
                        leader_epoch=p.leader_epoch,
                        replica_nodes=p.replicas,
                        isr_nodes=p.isr,
                        offline_replicas=tuple(
                            r for r in p.replicas if r not in image.live_brokers()
                        ),
                    )
                )
        topics.append(
            nested(
                cls,
                "MetadataResponseTopic",
                error_code=error_code(NONE if info is not None else UNKNOWN_TOPIC_OR_PARTITION),
                name=name,
                is_internal=name == OFFSETS_TOPIC,
                partitions=tuple(parts),
            )
        )
    brokers = tuple(
        nested(
            cls, "MetadataResponseBroker", node_id=b.broker, host=b.host, port=b.port, rack=b.rack
        )
        for b in sorted(image.brokers.values(), key=lambda b: b.broker)
        if not b.fenced or b.broker == cluster.config.node_id
    )
    controller = cluster.node.controller_id
    return make(
        cls,
        throttle_time=NO_THROTTLE,
        brokers=brokers,
        cluster_id=ctx.config.cluster_id,
        controller_id=controller if controller is not None else -1,
        topics=tuple(topics),
    )


async def handle_create_topics(ctx: BrokerContext, request: Request) -> Any:
    cluster = _cluster(ctx)
    body = request.body
    cls = response_class(ApiKey.CREATE_TOPICS, request.response_version)
    timeout = max(body.timeout.total_seconds(), 1.0) if body.timeout else 30.0
    results = []
    for topic in body.topics:
        configs = tuple((c.name, c.value) for c in topic.configs if c.value is not None)
        partitions = (
            topic.num_partitions if topic.num_partitions > 0 else ctx.config.default_partitions
        )
        replication = topic.replication_factor if topic.replication_factor > 0 else 1
        code, message = NONE, None
        if body.validate_only:
            code, message = INVALID_REQUEST, "validate_only is not supported"
        else:
            future = cluster.create_topic(
                CreateTopicRequest(
                    topic=topic.name,
                    partitions=partitions,
                    replication_factor=replication,
                    configs=configs,
                )
            )
            try:
                reply = await asyncio.wait_for(future, timeout=timeout)
                code, message = int(reply.error), reply.message or None
            except TimeoutError:
                code, message = REQUEST_TIMED_OUT, "the controller did not answer in time"
        results.append(
            nested(
                cls,
                "CreatableTopicResult",
                name=topic.name,
                error_code=error_code(code),
                error_message=message,
            )
        )
    return make(cls, throttle_time=NO_THROTTLE, topics=tuple(results))


async def handle_produce(ctx: BrokerContext, request: Request) -> Any:
    cluster = _cluster(ctx)
    body = request.body
    acks = body.acks
    cls = response_class(ApiKey.PRODUCE, request.response_version)
    pending: list[tuple[str, int, list[asyncio.Future[Any]] | int]] = []
    for topic in body.topic_data:
        for data in topic.partition_data:
            if acks not in (0, 1, -1):
                pending.append((topic.name, data.index, INVALID_REQUIRED_ACKS))
                continue
            if body.transactional_id is not None:
                pending.append((topic.name, data.index, INVALID_REQUEST))
                continue
            if topic.name == OFFSETS_TOPIC:  # only the group coordinator writes it
                pending.append((topic.name, data.index, InvalidTopic.code))
                continue
            records = bytes(data.records or b"")
            try:
                batches = [records[p : p + h.size] for p, h in iter_batches(records)]
            except InvalidBatchError:
                pending.append((topic.name, data.index, CORRUPT_MESSAGE))
                continue
            futures = [
                cluster.produce(topic=topic.name, partition=data.index, batch=b, acks=acks)
                for b in batches
            ]
            pending.append((topic.name, data.index, futures))
    timeout = max(body.timeout.total_seconds(), 0.001) if body.timeout else 30.0
    by_topic: dict[str, list[Any]] = {}
    failed = False
    for name, index, outcome in pending:
        code, base, start = NONE, -1, -1
        if isinstance(outcome, int):
            code = outcome
        else:
            try:
                done = await asyncio.wait_for(asyncio.gather(*outcome), timeout=timeout)
            except TimeoutError:
                done = []
                code = REQUEST_TIMED_OUT
            for d in done:
                if d.error != NONE:
                    code = d.error
                    break
            if done and code == NONE:
                base, start = done[0].base_offset, done[0].log_start_offset
        failed = failed or code != NONE
        by_topic.setdefault(name, []).append(
            nested(
                cls,
                "PartitionProduceResponse",
                index=index,
                error_code=error_code(code),
                base_offset=base,
                log_append_time=None,
                log_start_offset=start,
                record_errors=(),
                error_message=None,
            )
        )
    if acks == 0:
        return CLOSE_CONNECTION if failed else None
    responses = tuple(
        nested(cls, "TopicProduceResponse", name=name, partition_responses=tuple(parts))
        for name, parts in by_topic.items()
    )
    return make(cls, responses=responses, throttle_time=NO_THROTTLE)


def _read_all(cluster: ClusterDriver, body: Any, cls: type) -> tuple[tuple[Any, ...], int, bool]:
    remaining = body.max_bytes if body.max_bytes > 0 else 0
    total, failed = 0, False
    topics = []
    for topic in body.topics:
        parts = []
        for wanted in topic.partitions:
            limit = min(wanted.partition_max_bytes, remaining)
            result = cluster.node.replicas.read(
                topic=topic.topic,
                partition=wanted.partition,
                offset=wanted.fetch_offset,
                max_bytes=max(limit, 1) if total == 0 or limit > 0 else 1,
            )
            records = result.records if (total == 0 or limit > 0) else b""
            failed = failed or result.error != NONE
            total += len(records)
            remaining = max(remaining - len(records), 0)
            parts.append(
                nested(
                    cls,
                    "PartitionData",
                    partition_index=wanted.partition,
                    error_code=error_code(result.error),
                    high_watermark=result.high_watermark,
                    last_stable_offset=result.high_watermark,
                    log_start_offset=result.log_start_offset,
                    aborted_transactions=(),
                    preferred_read_replica=-1,
                    records=records,
                )
            )
        topics.append(
            nested(cls, "FetchableTopicResponse", topic=topic.topic, partitions=tuple(parts))
        )
    return tuple(topics), total, failed


async def handle_fetch(ctx: BrokerContext, request: Request) -> Any:
    cluster = _cluster(ctx)
    body = request.body
    cls = response_class(ApiKey.FETCH, request.response_version)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(body.max_wait.total_seconds(), 0.0)
    while True:
        changed = cluster.changed()
        topics, total, failed = _read_all(cluster, body, cls)
        timeout = deadline - loop.time()
        if failed or total >= body.min_bytes or timeout <= 0 or ctx.closing.is_set():
            break
        waiter = asyncio.ensure_future(changed.wait())
        closing = asyncio.ensure_future(ctx.closing.wait())
        try:
            await asyncio.wait(
                [waiter, closing], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            waiter.cancel()
            closing.cancel()
    return make(
        cls, throttle_time=NO_THROTTLE, error_code=error_code(0), session_id=0, responses=topics
    )


async def handle_list_offsets(ctx: BrokerContext, request: Request) -> Any:
    replicas = _cluster(ctx).node.replicas

    def answer(topic: str, index: int, wanted: int) -> OffsetAnswer:
        log = replicas.log(topic, index)
        hw = replicas.high_watermark(topic, index)
        assignment = replicas.assignment(topic, index)
        if log is None or hw is None or assignment is None:
            return UNKNOWN_TOPIC_OR_PARTITION, -1, -1, -1
        if not replicas.is_leader(topic, index):
            return NOT_LEADER_OR_FOLLOWER, -1, -1, -1
        epoch = assignment.leader_epoch
        if wanted == _EARLIEST:
            return NONE, log.log_start_offset, -1, epoch
        if wanted == _LATEST:
            code, latest = replicas.latest_offset(topic, index)
            return code, latest, -1, epoch
        if wanted < 0:
            return INVALID_REQUEST, -1, -1, epoch
        found = log.offset_for_timestamp(wanted)
        if found is not None and found[0] < hw:
            return NONE, found[0], found[1], epoch
        return NONE, -1, -1, epoch

    return list_offsets_response(request, answer)


async def handle_offset_for_leader_epoch(ctx: BrokerContext, request: Request) -> Any:
    replicas = _cluster(ctx).node.replicas

    def answer(topic: str, index: int, leader_epoch: int) -> EpochAnswer:
        log = replicas.log(topic, index)
        if log is None:
            return UNKNOWN_TOPIC_OR_PARTITION, -1, -1
        if not replicas.is_leader(topic, index):
            return NOT_LEADER_OR_FOLLOWER, -1, -1
        epoch, end = log.end_offset_for_epoch(leader_epoch)
        return NONE, epoch, min(end, replicas.high_watermark(topic, index) or 0)

    return offset_for_leader_epoch_response(request, answer)


async def handle_find_coordinator(ctx: BrokerContext, request: Request) -> Any:
    assert isinstance(ctx, ClusterContext)
    return find_coordinator_response(request, ctx.coordinators.locate)


CLUSTER_HANDLERS = {
    **SINGLE_NODE_HANDLERS,
    ApiKey.METADATA: handle_metadata,
    ApiKey.CREATE_TOPICS: handle_create_topics,
    ApiKey.PRODUCE: handle_produce,
    ApiKey.FETCH: handle_fetch,
    ApiKey.LIST_OFFSETS: handle_list_offsets,
    ApiKey.OFFSET_FOR_LEADER_EPOCH: handle_offset_for_leader_epoch,
    ApiKey.FIND_COORDINATOR: handle_find_coordinator,
}
