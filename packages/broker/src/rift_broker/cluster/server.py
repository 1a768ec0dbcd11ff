"""A cluster node's process: the Kafka listener beside the cluster driver.

``broker serve --node-id N --controllers 1@HOST:PORT,...`` runs this. The Kafka
listener (clients, and nothing else: replication and Raft use the controller
listener) is the single-node broker's connection machinery with the cluster's
handlers (:mod:`rift_broker.cluster.handlers`). Consumer groups run on the same
group driver as a single broker's, over a replicated ``__consumer_offsets``
(:mod:`rift_broker.cluster.groups`). Shutdown is graceful: stop accepting, answer
what was accepted, let offsets appends in flight finish, then stop the node (its
logs are flushed).
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
import uuid
from dataclasses import dataclass, replace
from typing import Any

from rift_broker.cluster.driver import ClusterDriver
from rift_broker.cluster.groups import CoordinatorLocator, GroupLeadership, ReplicatedOffsetsLog
from rift_broker.cluster.handlers import CLUSTER_HANDLERS, ClusterContext
from rift_broker.cluster.node import NodeConfig
from rift_broker.controller import ControllerConfig
from rift_broker.errors import BrokerError, ConfigError
from rift_broker.log import LogConfig
from rift_broker.raft import RaftConfig
from rift_broker.replication import Maintained, ReplicationConfig
from rift_broker.server.broker import Broker
from rift_broker.server.config import BrokerConfig
from rift_broker.server.groups import GroupDriver
from rift_broker.server.producer_ids import ProducerIdAllocator
from rift_broker.server.registry import TopicRegistry

_log = logging.getLogger("rift_broker.cluster")


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterSettings:
    """What a node needs beyond a single broker's settings."""

    controllers: dict[int, tuple[str, int]]  # every voter's controller listener
    election_timeout_ms: int = 1000
    heartbeat_interval_ms: int = 100
    session_timeout_ms: int = 6000
    broker_heartbeat_ms: int = 500
    replica_lag_time_max_ms: int = 10_000
    offsets_replication_factor: int = 3  # capped at the live brokers when created
    offsets_min_insync_replicas: int = 2


def parse_controllers(value: str) -> dict[int, tuple[str, int]]:
    """``1@host:port,2@host:port`` -> ``{1: (host, port), ...}``."""
    out: dict[int, tuple[str, int]] = {}
    for item in value.split(","):
        node, sep, address = item.strip().partition("@")
        host, colon, port = address.rpartition(":")
        if not sep or not colon or not node.isdigit() or not port.isdigit() or not host:
            raise ConfigError(f"bad --controllers entry {item!r}: use ID@HOST:PORT,...")
        if int(node) in out:
            raise ConfigError(f"--controllers lists node {node} twice")
        out[int(node)] = (host, int(port))
    return out


class ClusterBroker(Broker):
    def __init__(self, config: BrokerConfig, cluster: ClusterSettings) -> None:
        super().__init__(config, handlers=CLUSTER_HANDLERS)
        if config.node_id not in cluster.controllers:
            raise ConfigError(
                f"node {config.node_id} is not in --controllers ({sorted(cluster.controllers)})"
            )
        self.cluster = cluster
        self.driver: ClusterDriver | None = None
        self._replicated_offsets: ReplicatedOffsetsLog | None = None
        self._leadership: GroupLeadership | None = None

    async def start(self) -> None:
        config = self.config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self._server = await asyncio.start_server(
            self._on_client, config.host, config.port, reuse_address=True
        )
        sockets = self._server.sockets
        self.port = sockets[0].getsockname()[1] if sockets else config.port
        if config.port == 0 and config.advertised_port is None:
            self.config = config = replace(config, port=self.port)
        host, port = config.advertised
        settings = self.cluster
        node = NodeConfig(
            node_id=config.node_id,
            voters=tuple(sorted(settings.controllers)),
            host=host,
            port=port,
            incarnation=uuid.uuid4().hex,
            raft=RaftConfig(
                election_timeout_ms=settings.election_timeout_ms,
                heartbeat_interval_ms=settings.heartbeat_interval_ms,
            ),
            controller=ControllerConfig(session_timeout_ms=settings.session_timeout_ms),
            replication=ReplicationConfig(replica_lag_time_max_ms=settings.replica_lag_time_max_ms),
            heartbeat_interval_ms=settings.broker_heartbeat_ms,
        )
        log_config = LogConfig(
            segment_bytes=config.segment_bytes,
            retention_ms=-1 if config.retention_ms is None else config.retention_ms,
            retention_bytes=-1 if config.retention_bytes is None else config.retention_bytes,
            max_batch_bytes=min(config.max_request_bytes, (1 << 31) - 1),
        )
        self.driver = ClusterDriver(
            config=node,
            data_dir=str(config.data_dir),
            peers=settings.controllers,
            log_config=log_config,
            rng=random.Random(),
        )
        await self.driver.start()
        self._replicated_offsets = ReplicatedOffsetsLog(self.driver)
        groups = GroupDriver(
            self._replicated_offsets,
            num_partitions=config.offsets_partitions,
            config=config.group_config,
            partition_exists=self._partition_exists,
        )
        self._leadership = GroupLeadership(self.driver, groups)
        self._leadership.start()
        self._ctx = ClusterContext(
            config=config,
            table=self._table,
            registry=TopicRegistry(config, on_fatal=self._fatal),
            producer_ids=ProducerIdAllocator(config.data_dir, node_id=config.node_id),
            log=_log,
            groups=groups,
            cluster=self.driver,
            coordinators=CoordinatorLocator(
                self.driver,
                partitions=config.offsets_partitions,
                replication_factor=settings.offsets_replication_factor,
                min_insync_replicas=settings.offsets_min_insync_replicas,
            ),
        )
        self._maintenance = asyncio.create_task(self._maintain(), name="rift-maintenance")
        _log.info(
            "node %d serving Kafka on %s:%d, cluster listener %s:%d, data in %s",
            config.node_id,
            config.host,
            self.port,
            *settings.controllers[config.node_id],
            config.data_dir,
        )

    async def _maintenance_round(self) -> list[Maintained] | None:
        """Every replica this node holds, leader or follower, on the node's task."""
        closing = self.context.closing
        driver = self.driver
        if driver is None:
            return None
        future = driver.maintain()
        stopping = asyncio.ensure_future(closing.wait())
        try:  # a node task that died never answers: stopping must not wait for it
            waits: list[asyncio.Future[Any]] = [future, stopping]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not future.done():
            future.cancel()
            return None
        try:
            return future.result()
        except Exception as e:  # a bug: keep serving, try again next round
            _log.error("log maintenance failed: %s", e, exc_info=True)
            return []

    def _partition_exists(self, topic: str, partition: int) -> bool:
        return self.driver is not None and (topic, partition) in self.driver.node.image.partitions

    async def stop(self) -> None:
        if self._leadership is not None:
            await self._leadership.stop()
        await super().stop()
        if self._replicated_offsets is not None:
            await self._replicated_offsets.close()
        if self.driver is not None:
            await self.driver.stop()
            self.driver = None


async def run_cluster_broker(config: BrokerConfig, cluster: ClusterSettings) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully."""
    broker = ClusterBroker(config, cluster)
    await broker.start()
    loop = asyncio.get_running_loop()
    signalled = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, signalled.set)
    if broker.driver is not None:
        loop.add_signal_handler(signal.SIGUSR1, broker.driver.dump)
    try:
        waits = [
            asyncio.ensure_future(signalled.wait()),
            asyncio.ensure_future(broker.wait_stopped()),
        ]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for wait in waits:
            wait.cancel()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
            loop.remove_signal_handler(sig)
        await broker.stop()
    if broker.fatal_error is not None:
        raise BrokerError(broker.fatal_error)
