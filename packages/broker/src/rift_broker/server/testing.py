"""A broker in a background thread, for tests and tools that use blocking clients.

``with BrokerThread(config) as broker: ...`` starts a real broker (real sockets,
real files) on its own event loop and thread, and stops it gracefully on exit;
``broker.bootstrap`` is the ``host:port`` to give a client. Use port 0 for an
ephemeral port. :func:`produce_to_every_partition` and :func:`committed_offsets`
are the two client-side steps the consumer-group tests share.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future
from types import TracebackType
from typing import TypeVar

from rift_broker.server.broker import Broker
from rift_broker.server.config import BrokerConfig

__all__ = ["BrokerThread", "committed_offsets", "produce_to_every_partition"]

T = TypeVar("T")


class BrokerThread:
    def __init__(self, config: BrokerConfig, *, start_timeout_s: float = 30.0) -> None:
        self.config = config
        self._timeout = start_timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broker: Broker | None = None
        self._started: Future[int] = Future()
        self._thread = threading.Thread(target=self._main, name="rift-broker", daemon=True)

    @property
    def port(self) -> int:
        return self._started.result(self._timeout)

    @property
    def bootstrap(self) -> str:
        return f"{self.config.host}:{self.port}"

    @property
    def broker(self) -> Broker:
        assert self._broker is not None
        return self._broker

    def call(self, function: Callable[[Broker], T], *, timeout_s: float = 30.0) -> T:
        """Run ``function(broker)`` on the broker's loop thread (its state is not thread-safe)."""
        assert self._loop is not None
        assert self._broker is not None
        broker = self._broker

        async def run() -> T:
            return function(broker)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout_s)

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        broker = Broker(self.config)
        self._broker = broker
        try:
            await broker.start()
        except BaseException as e:
            self._started.set_exception(e)
            return
        self._started.set_result(broker.port)
        await broker.wait_stopped()

    def start(self) -> BrokerThread:
        self._thread.start()
        self._started.result(self._timeout)
        return self

    def stop(self, timeout_s: float = 60.0) -> None:
        if self._loop is not None and self._broker is not None and self._thread.is_alive():
            done = asyncio.run_coroutine_threadsafe(self._broker.stop(), self._loop)
            done.result(timeout_s)
        self._thread.join(timeout_s)

    def __enter__(self) -> BrokerThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def produce_to_every_partition(
    bootstrap: str, topic: str, *, partitions: int, per_partition: int, tag: str
) -> set[tuple[int, int, str]]:
    """``per_partition`` records ``"{tag}-{partition}-{i}"`` to each partition of
    ``topic`` (acks=all), every one acknowledged: ``(partition, offset, value)`` each."""
    from rift_client import sync

    with sync.Producer(bootstrap, acks="all") as producer:
        reports = []
        for i in range(per_partition):
            for partition in range(partitions):
                value = f"{tag}-{partition}-{i}".encode()
                reports.append((value, producer.send(topic, value, partition=partition)))
    acked = set()
    for value, report in reports:
        assert report.ok, report
        acked.add((report.partition, report.offset, value.decode()))
    return acked


def committed_offsets(
    bootstrap: str, topic: str, group: str, *, partitions: int
) -> dict[int, int | None]:
    """The group's committed offsets per partition, through OffsetFetch (without
    joining the group)."""
    from rift_client import TopicPartition, sync

    with sync.Consumer(bootstrap, group_id=group) as consumer:
        offsets = consumer.committed(
            [TopicPartition(topic=topic, partition=p) for p in range(partitions)]
        )
    return {tp.partition: offset for tp, offset in offsets.items()}
