"""A scripted, in-process Kafka cluster for failover tests of our client.

Several nodes (asyncio servers on 127.0.0.1) share one replicated log of one
topic. A test moves leadership (bumping the leader epoch) and plants faults:
an error code for the next Produce, an append followed by a dropped connection,
a Produce that is never answered. The log deduplicates idempotent batches by
(producer id, base sequence) like Kafka, so retries can be checked for duplicates.
Only enough of the protocol for the client's Producer and Consumer is spoken.
"""

from __future__ import annotations

import asyncio
import importlib
import io
import struct
from dataclasses import dataclass, field, fields
from typing import Any

from kio.schema.errors import ErrorCode
from kio.schema.request_header.v1.header import RequestHeader
from kio.serial import entity_reader, entity_writer

from rift_client import protocol
from rift_client.protocol import Api

_MODULES = {
    Api.PRODUCE: "produce",
    Api.FETCH: "fetch",
    Api.LIST_OFFSETS: "list_offsets",
    Api.METADATA: "metadata",
    Api.API_VERSIONS: "api_versions",
    Api.INIT_PRODUCER_ID: "init_producer_id",
}
NEWEST = {
    Api.PRODUCE: 8,
    Api.FETCH: 11,
    Api.LIST_OFFSETS: 5,
    Api.METADATA: 8,
    Api.API_VERSIONS: 2,
    Api.INIT_PRODUCER_ID: 1,
}


OLDEST = {
    Api.PRODUCE: 3,
    Api.FETCH: 4,
    Api.LIST_OFFSETS: 1,
    Api.METADATA: 1,
    Api.API_VERSIONS: 2,
    Api.INIT_PRODUCER_ID: 0,
}


def _resp(versions: dict[Api, int], api: Api, name: str, /, **values: Any) -> Any:
    module = importlib.import_module(f"kio.schema.{_MODULES[api]}.v{versions[api]}.response")
    cls = getattr(module, name)
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names})


@dataclass
class Cluster:
    topic: str = "t"
    nodes: list[int] = field(default_factory=lambda: [1, 2, 3])
    leader: int = 1
    epoch: int = 0
    log: list[bytes] = field(default_factory=list)  # one entry per record batch
    offsets: list[int] = field(default_factory=list)
    next_offset: int = 0
    dedup: dict[tuple[int, int], int] = field(default_factory=dict)
    producer_ids: int = 1000
    ports: dict[int, int] = field(default_factory=dict)
    # planted faults, consumed in order
    produce_errors: list[int] = field(default_factory=list)
    drop_after_append: int = 0
    hang_produce: int = 0
    produce_calls: list[int] = field(default_factory=list)  # node per Produce
    fetch_calls: list[int] = field(default_factory=list)
    versions: dict[Api, int] = field(default_factory=lambda: dict(NEWEST))

    def resp(self, api: Api, name: str, /, **values: Any) -> Any:
        return _resp(self.versions, api, name, **values)

    def move_leader(self, node: int) -> None:
        self.leader = node
        self.epoch += 1

    def records(self) -> int:
        return sum(struct.unpack_from(">i", b, 57)[0] for b in self.log)

    def append(self, batch: bytes) -> tuple[int, bool]:
        """(base offset, was it new); dedups idempotent retries."""
        producer_id, _, base_sequence = struct.unpack_from(">qhi", batch, 43)
        if producer_id >= 0 and (producer_id, base_sequence) in self.dedup:
            return self.dedup[(producer_id, base_sequence)], False
        count = struct.unpack_from(">i", batch, 57)[0]
        base = self.next_offset
        stamped = bytearray(batch)
        struct.pack_into(">q", stamped, 0, base)
        struct.pack_into(">i", stamped, 12, self.epoch)
        self.log.append(bytes(stamped))
        self.offsets.append(base)
        self.next_offset += count
        if producer_id >= 0:
            self.dedup[(producer_id, base_sequence)] = base
        return base, True

    async def start(self) -> list[asyncio.Server]:
        servers = []
        for node in self.nodes:
            server = await asyncio.start_server(
                lambda r, w, n=node: self._serve(n, r, w), "127.0.0.1", 0
            )
            self.ports[node] = server.sockets[0].getsockname()[1]
            servers.append(server)
        return servers

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.ports.values())

    async def _serve(
        self, node: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while True:
                size = struct.unpack(">i", await reader.readexactly(4))[0]
                frame = await reader.readexactly(size)
                header, used = entity_reader(RequestHeader)(frame, 0)
                api = Api(header.request_api_key)
                version = int(header.request_api_version)
                body, _ = entity_reader(protocol.request_type(api, version))(frame, used)
                answer = await self._handle(node, api, body, writer)
                if answer is None:
                    continue
                out = io.BytesIO()
                out.write(struct.pack(">i", header.correlation_id))
                entity_writer(type(answer))(out, answer)
                data = out.getvalue()
                writer.write(struct.pack(">i", len(data)) + data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _handle(self, node: int, api: Api, body: Any, writer: asyncio.StreamWriter) -> Any:
        if api is Api.API_VERSIONS:
            return self.resp(
                api,
                "ApiVersionsResponse",
                error_code=ErrorCode.none,
                throttle_time=protocol.duration(0),
                api_keys=tuple(
                    self.resp(api, "ApiVersion", api_key=k, min_version=0, max_version=v)
                    for k, v in self.versions.items()
                ),
            )
        if api is Api.METADATA:
            return self._metadata()
        if api is Api.INIT_PRODUCER_ID:
            self.producer_ids += 1
            return self.resp(
                api,
                "InitProducerIdResponse",
                throttle_time=protocol.duration(0),
                error_code=ErrorCode.none,
                producer_id=self.producer_ids,
                producer_epoch=0,
            )
        if api is Api.PRODUCE:
            return await self._produce(node, body, writer)
        if api is Api.FETCH:
            return self._fetch(node, body)
        if api is Api.LIST_OFFSETS:
            return self._list_offsets(node, body)
        raise AssertionError(api)

    def _metadata(self) -> Any:
        api = Api.METADATA
        return self.resp(
            api,
            "MetadataResponse",
            throttle_time=protocol.duration(0),
            cluster_id="scripted",
            controller_id=self.nodes[0],
            cluster_authorized_operations=-2147483648,
            brokers=tuple(
                self.resp(
                    api,
                    "MetadataResponseBroker",
                    node_id=n,
                    host="127.0.0.1",
                    port=self.ports[n],
                    rack=None,
                )
                for n in self.nodes
            ),
            topics=(
                self.resp(
                    api,
                    "MetadataResponseTopic",
                    error_code=ErrorCode.none,
                    name=self.topic,
                    is_internal=False,
                    topic_authorized_operations=-2147483648,
                    partitions=(
                        self.resp(
                            api,
                            "MetadataResponsePartition",
                            error_code=ErrorCode.none,
                            partition_index=0,
                            leader_id=self.leader,
                            leader_epoch=self.epoch,
                            replica_nodes=tuple(self.nodes),
                            isr_nodes=tuple(self.nodes),
                            offline_replicas=(),
                        ),
                    ),
                ),
            ),
        )

    async def _produce(self, node: int, body: Any, writer: asyncio.StreamWriter) -> Any:
        api = Api.PRODUCE
        self.produce_calls.append(node)
        (topic,) = body.topic_data
        (part,) = topic.partition_data
        code, base = 0, -1
        if self.hang_produce:
            self.hang_produce -= 1
            await asyncio.sleep(3600)
        if node != self.leader:
            code = 6  # NOT_LEADER_OR_FOLLOWER
        elif self.drop_after_append:
            self.drop_after_append -= 1
            self.append(bytes(part.records))
            writer.close()
            raise ConnectionError("planted: dropped after the append")
        elif self.produce_errors:
            code = self.produce_errors.pop(0)
        else:
            base, _ = self.append(bytes(part.records))
        return self.resp(
            api,
            "ProduceResponse",
            throttle_time=protocol.duration(0),
            responses=(
                self.resp(
                    api,
                    "TopicProduceResponse",
                    name=topic.name,
                    partition_responses=(
                        self.resp(
                            api,
                            "PartitionProduceResponse",
                            index=part.index,
                            error_code=ErrorCode(code),
                            base_offset=base,
                            log_append_time=None,
                            log_start_offset=0,
                            record_errors=(),
                            error_message=None,
                        ),
                    ),
                ),
            ),
        )

    def _fetch(self, node: int, body: Any) -> Any:
        api = Api.FETCH
        self.fetch_calls.append(node)
        (topic,) = body.topics
        (part,) = topic.partitions
        code, data = 0, b""
        if node != self.leader:
            code = 6
        elif getattr(part, "current_leader_epoch", -1) not in (-1, self.epoch):
            code = 74 if part.current_leader_epoch < self.epoch else 75
        elif part.fetch_offset > self.next_offset:
            code = 1
        else:
            data = b"".join(
                b
                for b, o in zip(self.log, self.offsets, strict=True)
                if o + struct.unpack_from(">i", b, 23)[0] >= part.fetch_offset
            )
        return self.resp(
            api,
            "FetchResponse",
            throttle_time=protocol.duration(0),
            error_code=ErrorCode.none,
            session_id=0,
            responses=(
                self.resp(
                    api,
                    "FetchableTopicResponse",
                    topic=topic.topic,
                    partitions=(
                        self.resp(
                            api,
                            "PartitionData",
                            partition_index=0,
                            error_code=ErrorCode(code),
                            high_watermark=self.next_offset,
                            last_stable_offset=self.next_offset,
                            log_start_offset=0,
                            aborted_transactions=None,
                            preferred_read_replica=-1,
                            records=data or None,
                        ),
                    ),
                ),
            ),
        )

    def _list_offsets(self, node: int, body: Any) -> Any:
        api = Api.LIST_OFFSETS
        (topic,) = body.topics
        (part,) = topic.partitions
        code = 6 if node != self.leader else 0
        offset = 0 if part.timestamp == -2 else self.next_offset
        return self.resp(
            api,
            "ListOffsetsResponse",
            throttle_time=protocol.duration(0),
            topics=(
                self.resp(
                    api,
                    "ListOffsetsTopicResponse",
                    name=topic.name,
                    partitions=(
                        self.resp(
                            api,
                            "ListOffsetsPartitionResponse",
                            partition_index=0,
                            error_code=ErrorCode(code),
                            timestamp=-1,
                            offset=offset,
                            leader_epoch=self.epoch,
                        ),
                    ),
                ),
            ),
        )
