"""The asyncio driver of one broker: listen, serve connections, stop gracefully.

Start: open every topic of the data directory; when the broker serves the group APIs
(the default), create ``__consumer_offsets`` if missing and load all its partitions
into the group driver (:mod:`rift_broker.server.groups`; one node leads them all),
so every committed offset and group of the last run is back before the first
request.

Graceful stop (SIGTERM, SIGINT, or :meth:`Broker.stop`): stop accepting; tell every
connection to stop reading; wake long-polling fetches; let offsets appends in flight
finish and answer requests still waiting on a group (NOT_COORDINATOR, so clients
look for the coordinator again); wait (bounded by ``shutdown_timeout_s``) until
every accepted request is answered; then flush and close every partition log.
Whatever was acknowledged before is on disk, so a restart on the same data
directory serves it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Mapping

from rift_broker.errors import BrokerError
from rift_broker.protocol import ApiKey, VersionTable, table_for
from rift_broker.replication.messages import Maintained
from rift_broker.server.budget import ByteBudget
from rift_broker.server.config import BrokerConfig
from rift_broker.server.connection import Connection
from rift_broker.server.context import BrokerContext, wall_clock_ms
from rift_broker.server.groups import GroupDriver
from rift_broker.server.handlers import SINGLE_NODE_HANDLERS, Handler
from rift_broker.server.offsets_log import LocalOffsetsLog, ensure_offsets_topic
from rift_broker.server.producer_ids import ProducerIdAllocator
from rift_broker.server.registry import TopicRegistry

__all__ = ["Broker", "run_broker"]

_log = logging.getLogger("rift_broker.server")


class Broker:
    """One broker process's server. ``async with Broker(config) as broker: ...``."""

    def __init__(
        self,
        config: BrokerConfig,
        *,
        table: VersionTable | None = None,
        handlers: Mapping[int, Handler] = SINGLE_NODE_HANDLERS,
    ) -> None:
        """``table`` and ``handlers`` grow together; by default the table lists the
        group APIs exactly when ``handlers`` has them (:func:`table_for`)."""
        if table is None:
            table = table_for(handlers)
        missing = [spec.key.name for spec in table.specs() if spec.key not in handlers]
        if missing:
            raise ValueError(f"no handler for {', '.join(missing)}")
        self.config = config
        self._table = table
        self._handlers = handlers
        self._server: asyncio.Server | None = None
        self._connections: dict[Connection, asyncio.Task[None]] = {}
        self._ctx: BrokerContext | None = None
        self._budget = ByteBudget(config.max_inflight_bytes)
        self._stopped = asyncio.Event()
        self._maintenance: asyncio.Task[None] | None = None
        self._fatal_stop: asyncio.Task[None] | None = None
        self._offsets_log: LocalOffsetsLog | None = None
        self.fatal_error: str | None = None
        self.port = config.port

    @property
    def context(self) -> BrokerContext:
        if self._ctx is None:
            raise RuntimeError("the broker is not started")
        return self._ctx

    async def start(self) -> None:
        config = self.config
        registry = TopicRegistry(config, on_fatal=self._fatal)
        registry.load(now_ms=wall_clock_ms())
        # Bind before creating anything on disk (a busy port changes nothing), but
        # accept only once the groups are loaded.
        server = await asyncio.start_server(
            self._on_client, config.host, config.port, reuse_address=True, start_serving=False
        )
        try:
            groups = self._start_groups(registry)
        except BaseException:
            server.close()
            raise
        self._server = server
        self._ctx = BrokerContext(
            config=config,
            table=self._table,
            registry=registry,
            producer_ids=ProducerIdAllocator(config.data_dir),
            log=_log,
            groups=groups,
        )
        sockets = server.sockets
        self.port = sockets[0].getsockname()[1] if sockets else config.port
        if config.port == 0 and config.advertised_port is None:
            # An ephemeral port: advertise the one the kernel picked.
            from dataclasses import replace

            self.config = replace(config, port=self.port)
            self._ctx.config = self.config
        await server.start_serving()
        self._maintenance = asyncio.create_task(self._maintain(), name="rift-maintenance")
        _log.info(
            "serving on %s:%d, data in %s (%d topics)",
            config.host,
            self.port,
            config.data_dir,
            len(registry.topics()),
        )

    def _start_groups(self, registry: TopicRegistry) -> GroupDriver | None:
        """The group driver with every ``__consumer_offsets`` partition loaded (this
        node leads them all), if the broker serves the group APIs."""
        if self._table.get(ApiKey.FIND_COORDINATOR) is None:
            return None
        config = self.config
        topic = ensure_offsets_topic(
            registry, partitions=config.offsets_partitions, now_ms=wall_clock_ms()
        )
        self._offsets_log = LocalOffsetsLog(topic)
        groups = GroupDriver(
            self._offsets_log,
            num_partitions=topic.spec.partitions,
            config=config.group_config,
            partition_exists=lambda t, p: registry.partition(t, p) is not None,
        )
        groups.load_all()
        _log.info("loaded %d consumer group(s) from %s", len(groups.list_groups()), topic.spec.name)
        return groups

    def _fatal(self, reason: str) -> None:
        """An fsync failed: stop the whole broker (never retry; the pages may be gone)."""
        if self.fatal_error is not None:
            return
        self.fatal_error = reason
        _log.critical("%s; stopping the broker (restart to recover from disk)", reason)
        self._fatal_stop = asyncio.get_running_loop().create_task(self.stop())

    async def _maintain(self) -> None:
        """Segment rolling by age and retention, every ``maintenance_interval_s``;
        what each round deleted, or failed on, is logged."""
        closing = self.context.closing
        while not closing.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closing.wait(), self.config.maintenance_interval_s)
            if closing.is_set():
                return
            done = await self._maintenance_round()
            if done is None:
                return
            for item in done:
                name = f"{item.topic}-{item.partition}"
                if item.error is not None:
                    _log.error("maintenance of %s failed: %s", name, item.error)
                elif item.deleted:
                    _log.info(
                        "retention deleted %d segment(s) of %s; log start offset %d",
                        item.deleted,
                        name,
                        item.log_start_offset,
                    )

    async def _maintenance_round(self) -> list[Maintained] | None:
        """One round over every partition: those it deleted segments of or failed on
        (None: the broker is stopping)."""
        now_ms = wall_clock_ms()
        out: list[Maintained] = []
        for partition in list(self.context.registry.partitions()):
            topic, index = partition.topic, partition.index
            try:
                deleted = partition.maintain(now_ms)
            except Exception as e:  # one bad partition must not stop the others
                out.append(Maintained(topic=topic, partition=index, error=str(e)))
                continue
            if deleted:
                start = partition.log.log_start_offset
                out.append(
                    Maintained(
                        topic=topic, partition=index, deleted=deleted, log_start_offset=start
                    )
                )
        return out

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ctx = self.context
        if ctx.closing.is_set():
            writer.close()
            return
        connection = Connection(
            ctx, reader, writer, handlers=self._handlers, broker_budget=self._budget
        )
        task = asyncio.current_task()
        assert task is not None
        self._connections[connection] = task
        try:
            await connection.run()
        finally:
            self._connections.pop(connection, None)

    async def stop(self) -> None:
        if self._ctx is None or self._ctx.closing.is_set():
            await self._stopped.wait()
            return
        ctx = self._ctx
        ctx.closing.set()
        if self._server is not None:
            self._server.close()
        if self._maintenance is not None:
            await self._maintenance
        for connection in list(self._connections):
            connection.stop_reading()
        if ctx.groups is not None:
            await ctx.groups.close(timeout_s=min(self.config.shutdown_timeout_s, 10.0))
        pending = list(self._connections.values())
        if pending:
            _done, late = await asyncio.wait(pending, timeout=self.config.shutdown_timeout_s)
            for task in late:
                task.cancel()
            if late:
                _log.warning("%d connection(s) did not finish in time", len(late))
                await asyncio.wait(late)
        if self._offsets_log is not None:
            await self._offsets_log.close()
        for partition in list(ctx.registry.partitions()):
            try:
                await partition.close()  # waits for the running flush, then flushes and closes
            except Exception as e:
                _log.error("closing %s-%d failed: %s", partition.topic, partition.index, e)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
        _log.info("stopped")
        self._stopped.set()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    async def __aenter__(self) -> Broker:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def run_broker(config: BrokerConfig) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully."""
    broker = Broker(config)
    await broker.start()
    loop = asyncio.get_running_loop()
    signalled = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, signalled.set)
    try:
        waits = [
            asyncio.ensure_future(signalled.wait()),
            asyncio.ensure_future(broker.wait_stopped()),
        ]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for wait in waits:
            wait.cancel()
        if signalled.is_set():
            _log.info("signal received, shutting down")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await broker.stop()
    if broker.fatal_error is not None:
        raise BrokerError(broker.fatal_error)
