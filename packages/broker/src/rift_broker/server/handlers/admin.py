"""ApiVersions, Metadata and CreateTopics: what the broker offers and which topics exist."""

from __future__ import annotations

from typing import Any

from rift_broker.errors import (
    InvalidReplicaAssignment,
    InvalidRequest,
    KafkaError,
    TopicAlreadyExists,
    UnknownTopicOrPartition,
)
from rift_broker.group import OFFSETS_TOPIC
from rift_broker.protocol import ApiKey, Request
from rift_broker.server._build import NO_THROTTLE, error_code, make, nested, response_class
from rift_broker.server.context import BrokerContext
from rift_broker.server.topics import validate_name, validate_topic

__all__ = ["handle_api_versions", "handle_metadata", "handle_create_topics"]

_UNSUPPORTED_VERSION = 35


async def handle_api_versions(ctx: BrokerContext, request: Request) -> Any:
    version = request.response_version
    cls = response_class(ApiKey.API_VERSIONS, version)
    keys = tuple(
        nested(
            cls,
            "ApiVersion",
            api_key=int(spec.key),
            min_version=spec.advertised[0],
            max_version=spec.advertised[1],
        )
        for spec in ctx.table.specs()
    )
    code = _UNSUPPORTED_VERSION if request.body is None else 0
    return make(cls, error_code=error_code(code), api_keys=keys, throttle_time=NO_THROTTLE)


def _partition_entries(cls: type, ctx: BrokerContext, name: str) -> tuple[Any, ...]:
    topic = ctx.registry.get(name)
    assert topic is not None
    node = ctx.config.node_id
    return tuple(
        nested(
            cls,
            "MetadataResponsePartition",
            error_code=error_code(0),
            partition_index=partition.index,
            leader_id=node,
            leader_epoch=partition.leader_epoch,
            replica_nodes=(node,),
            isr_nodes=(node,),
            offline_replicas=(),
        )
        for partition in topic.partitions
    )


async def handle_metadata(ctx: BrokerContext, request: Request) -> Any:
    body = request.body
    version = request.response_version
    cls = response_class(ApiKey.METADATA, version)
    requested = body.topics
    if requested is None or (version == 0 and not requested):
        names = [topic.spec.name for topic in ctx.registry.topics()]
    else:
        names = [t.name for t in requested]
    allow_create = ctx.config.auto_create_topics and getattr(
        body, "allow_auto_topic_creation", True
    )
    entries = []
    for name in names:
        code = 0
        if ctx.registry.get(name) is None:
            code = UnknownTopicOrPartition.code
            if allow_create:
                try:
                    validate_name(name)
                    ctx.registry.create(
                        validate_topic(
                            name=name,
                            num_partitions=-1,
                            replication_factor=-1,
                            configs={},
                            default_partitions=ctx.config.default_partitions,
                            live_nodes=(ctx.config.node_id,),
                        ),
                        now_ms=ctx.now_ms(),
                    )
                    code = 0
                except KafkaError as e:
                    code = e.code
        partitions = _partition_entries(cls, ctx, name) if code == 0 else ()
        entries.append(
            nested(
                cls,
                "MetadataResponseTopic",
                error_code=error_code(code),
                name=name,
                is_internal=name == OFFSETS_TOPIC,
                partitions=partitions,
            )
        )
    host, port = ctx.config.advertised
    broker = nested(cls, "MetadataResponseBroker", node_id=ctx.config.node_id, host=host, port=port)
    return make(
        cls,
        throttle_time=NO_THROTTLE,
        brokers=(broker,),
        cluster_id=ctx.config.cluster_id,
        controller_id=ctx.config.node_id,
        topics=tuple(entries),
    )


async def handle_create_topics(ctx: BrokerContext, request: Request) -> Any:
    body = request.body
    cls = response_class(ApiKey.CREATE_TOPICS, request.response_version)
    names = [topic.name for topic in body.topics]
    results = []
    for topic in body.topics:
        code, message = 0, None
        try:
            if names.count(topic.name) > 1:
                raise InvalidRequest(f"topic {topic.name!r} is listed twice")
            _create_one(ctx, topic, validate_only=body.validate_only)
        except KafkaError as e:
            code, message = e.code, str(e)
            ctx.log.info("CreateTopics %s: %s", topic.name, message)
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


def _create_one(ctx: BrokerContext, topic: Any, *, validate_only: bool) -> None:
    """Validate (and unless ``validate_only``, create) one topic; raise its Kafka error."""
    assignments = sorted(topic.assignments, key=lambda a: int(a.partition_index))
    if [a.partition_index for a in assignments] != list(range(len(assignments))):
        raise InvalidReplicaAssignment("replica assignments must cover partitions 0..n-1")
    spec = validate_topic(
        name=topic.name,
        num_partitions=topic.num_partitions,
        replication_factor=topic.replication_factor,
        assignments=[a.broker_ids for a in assignments],
        configs={c.name: c.value for c in topic.configs},
        default_partitions=ctx.config.default_partitions,
        live_nodes=(ctx.config.node_id,),
    )
    if ctx.registry.get(spec.name) is not None:
        raise TopicAlreadyExists(f"topic {spec.name!r} already exists")
    if not validate_only:
        ctx.registry.create(spec, now_ms=ctx.now_ms())
