"""What the client knows about the cluster, and its connections to it.

:class:`Cluster` keeps the last Metadata answer (brokers, and per partition the
leader, leader epoch, replicas and ISR) and one :class:`Connection` per broker,
opened lazily. Callers ask for ``leader(tp)`` and refresh when an error says the
view is stale (``error.invalid_metadata``). Concurrent refreshes are coalesced:
a caller that waited for the lock while another refresh completed does not send
a second one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection, Sequence
from typing import Any

from rift_client import protocol
from rift_client.connection import Connection
from rift_client.errors import BrokerUnreachable, ClientError, InvalidArgument, for_code
from rift_client.protocol import Api
from rift_client.types import BrokerInfo, PartitionInfo, TopicInfo, TopicPartition

__all__ = ["Cluster", "parse_bootstrap"]


def parse_bootstrap(servers: str | Sequence[str]) -> list[tuple[str, int]]:
    """``"h1:9092,h2:9092"`` or ``["h1:9092", ...]`` as ``[(host, port), ...]``."""
    items = servers.split(",") if isinstance(servers, str) else list(servers)
    result = []
    for item in items:
        host, sep, port = item.strip().rpartition(":")
        if not sep or not host or not port.isdigit():
            raise InvalidArgument(f"bootstrap server {item!r} is not HOST:PORT")
        result.append((host.strip("[]"), int(port)))
    if not result:
        raise InvalidArgument("give at least one bootstrap server")
    return result


class Cluster:
    def __init__(
        self,
        bootstrap_servers: str | Sequence[str],
        *,
        client_id: str = "rift",
        request_timeout: float = 30.0,
        connect_timeout: float = 10.0,
    ) -> None:
        self.bootstrap = parse_bootstrap(bootstrap_servers)
        self.client_id = client_id
        self.request_timeout = request_timeout
        self.connect_timeout = connect_timeout
        self.brokers: dict[int, BrokerInfo] = {}
        self.topics: dict[str, TopicInfo] = {}
        self.controller: int = -1
        self._connections: dict[int | tuple[str, int], Connection] = {}
        self._connecting: dict[int | tuple[str, int], asyncio.Lock] = {}
        self._refresh_lock = asyncio.Lock()
        self._generation = 0
        self._rotation = 0

    # --- connections -------------------------------------------------------

    async def _connect(self, key: int | tuple[str, int], host: str, port: int) -> Connection:
        conn = self._connections.get(key)
        if conn is not None and not conn.closed:
            return conn
        lock = self._connecting.setdefault(key, asyncio.Lock())
        async with lock:
            conn = self._connections.get(key)
            if conn is not None and not conn.closed:
                return conn
            conn = await Connection.open(
                host, port, client_id=self.client_id, time_limit=self.connect_timeout
            )
            self._connections[key] = conn
            return conn

    async def connection(self, node: int) -> Connection:
        broker = self.brokers.get(node)
        if broker is None:
            raise BrokerUnreachable(f"broker {node} is not in the metadata")
        return await self._connect(node, broker.host, broker.port)

    async def any_connection(self) -> Connection:
        """A connection to some broker: known brokers first, then bootstrap servers."""
        candidates: list[tuple[int | tuple[str, int], str, int]] = [
            (b.node, b.host, b.port) for b in self.brokers.values()
        ]
        candidates += [((h, p), h, p) for h, p in self.bootstrap]
        # Rotate, so that one broker with a stale view (or a dead but still open
        # connection) cannot answer every metadata request.
        self._rotation += 1
        order = [candidates[(self._rotation + i) % len(candidates)] for i in range(len(candidates))]
        for key, _, _ in order:
            conn = self._connections.get(key)
            if conn is not None and not conn.closed:
                return conn
        errors = []
        for key, host, port in order:
            try:
                return await self._connect(key, host, port)
            except ClientError as exc:
                errors.append(str(exc))
        raise BrokerUnreachable("no broker reachable: " + "; ".join(errors))

    async def close(self) -> None:
        conns = list(self._connections.values())
        self._connections.clear()
        for conn in conns:
            with contextlib.suppress(Exception):
                await conn.close()

    # --- metadata ----------------------------------------------------------

    async def refresh(self, topics: Collection[str] | None = None) -> None:
        """Fetch metadata for ``topics`` (all topics if None) and merge it in."""
        seen = self._generation
        async with self._refresh_lock:
            if (
                self._generation != seen
                and topics is not None
                and all(t in self.topics for t in topics)
            ):
                return
            conn = await self.any_connection()
            version = conn.version(Api.METADATA)
            requested = (
                None
                if topics is None
                else tuple(
                    protocol.make(Api.METADATA, version, "MetadataRequestTopic", name=t)
                    for t in sorted(topics)
                )
            )
            body = protocol.request(
                Api.METADATA,
                version,
                topics=requested,
                allow_auto_topic_creation=False,
                include_cluster_authorized_operations=False,
                include_topic_authorized_operations=False,
            )
            try:
                response = await conn.send(body, time_limit=self.request_timeout)
            except ClientError:
                await conn.close()
                raise
            self._apply(response, full=topics is None)
            self._generation += 1

    def _apply(self, response: Any, *, full: bool) -> None:
        self.brokers = {
            int(b.node_id): BrokerInfo(
                node=int(b.node_id), host=b.host, port=int(b.port), rack=b.rack
            )
            for b in response.brokers
        }
        self.controller = int(getattr(response, "controller_id", -1))
        if full:
            self.topics = {}
        for t in response.topics:
            if t.error_code == 3:  # UNKNOWN_TOPIC_OR_PARTITION: forget it
                self.topics.pop(t.name, None)
                continue
            parts = tuple(
                sorted(
                    (
                        PartitionInfo(
                            topic=t.name,
                            partition=int(p.partition_index),
                            leader=int(p.leader_id),
                            epoch=int(getattr(p, "leader_epoch", -1)),
                            replicas=tuple(int(r) for r in p.replica_nodes),
                            isr=tuple(int(r) for r in p.isr_nodes),
                            offline_replicas=tuple(
                                int(r) for r in getattr(p, "offline_replicas", ())
                            ),
                            error=int(p.error_code),
                        )
                        for p in t.partitions
                    ),
                    key=lambda p: p.partition,
                )
            )
            self.topics[t.name] = TopicInfo(
                name=t.name,
                partitions=parts,
                internal=bool(getattr(t, "is_internal", False)),
                error=int(t.error_code),
            )

    def leader(self, tp: TopicPartition) -> PartitionInfo | None:
        info = self.topics.get(tp.topic)
        if info is None or not 0 <= tp.partition < len(info.partitions):
            return None
        part = info.partitions[tp.partition]
        return part if part.partition == tp.partition else None

    async def topic(self, name: str) -> TopicInfo:
        """The topic's metadata, fetched if not cached; raises if it does not exist."""
        info = self.topics.get(name)
        if info is None or not info.partitions:
            await self.refresh([name])
            info = self.topics.get(name)
        if info is None:
            raise for_code(3, f"topic {name!r} does not exist", definite=True)
        if not info.partitions:
            raise for_code(info.error or 5, f"topic {name!r} has no partitions yet", definite=True)
        return info
