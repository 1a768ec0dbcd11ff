"""A small synchronous facade: the asyncio clients on a private event-loop thread.

For command-line tools and scripts::

    with rift_client.sync.Producer("127.0.0.1:9092") as producer:
        report = producer.send("events", b"hello", key=b"k")

Each facade object owns one daemon thread running one event loop; every method
submits a coroutine to it and blocks for the result. Arguments and results are
the same as the asyncio classes'.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from rift_client import admin as _admin
from rift_client import consumer as _consumer
from rift_client import producer as _producer
from rift_client.errors import ClientError
from rift_client.outcome import DeliveryReport
from rift_client.records import Header
from rift_client.types import BrokerInfo, ConsumerRecord, NewTopic, TopicInfo, TopicPartition

__all__ = ["Producer", "Consumer", "Admin"]

T = TypeVar("T")


class _LoopThread:
    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


async def _build(factory: Any, *args: Any, **kwargs: Any) -> Any:
    # The asyncio clients create locks and events: build them on their own loop.
    return factory(*args, **kwargs)


class _Facade:
    _factory: Any

    def __init__(self, bootstrap_servers: str | Sequence[str], **settings: Any) -> None:
        self._loop = _LoopThread(f"rift-{type(self).__name__.lower()}")
        try:
            self._client = self._loop.run(_build(self._factory, bootstrap_servers, **settings))
            self._loop.run(self._client.start())
        except BaseException:
            self._loop.stop()
            raise

    def close(self) -> None:
        if self._loop.loop.is_closed():
            return
        try:
            self._loop.run(self._client.close())
        finally:
            self._loop.stop()

    def __enter__(self: Any) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Producer(_Facade):
    """Takes the settings of :class:`rift_client.Producer`."""

    _factory = _producer.Producer
    _client: _producer.Producer

    def send(
        self,
        topic: str,
        value: bytes | None = None,
        *,
        key: bytes | None = None,
        headers: Sequence[Header] = (),
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> DeliveryReport:
        return self._loop.run(
            self._client.send(
                topic,
                value,
                key=key,
                headers=headers,
                partition=partition,
                timestamp_ms=timestamp_ms,
            )
        )

    def send_many(
        self, topic: str, records: Iterable[tuple[bytes | None, bytes | None]]
    ) -> list[DeliveryReport]:
        """Send ``(key, value)`` pairs concurrently (batched); reports in input order."""

        async def run() -> list[DeliveryReport]:
            futures = [await self._client.enqueue(topic, v, key=k) for k, v in records]
            return list(await asyncio.gather(*futures))

        return self._loop.run(run())

    def flush(self) -> None:
        self._loop.run(self._client.flush())


class Consumer(_Facade):
    """Takes the settings of :class:`rift_client.Consumer`."""

    _factory = _consumer.Consumer
    _client: _consumer.Consumer

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        tps = list(partitions)

        async def run() -> None:
            self._client.assign(tps)

        self._loop.run(run())

    def assignment(self) -> frozenset[TopicPartition]:
        result: frozenset[TopicPartition] = self._client.assignment()
        return result

    def seek(self, tp: TopicPartition, offset: int) -> None:
        async def run() -> None:
            self._client.seek(tp, offset)

        self._loop.run(run())

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        self._loop.run(self._client.seek_to_beginning(*partitions))

    def seek_to_end(self, *partitions: TopicPartition) -> None:
        self._loop.run(self._client.seek_to_end(*partitions))

    def position(self, tp: TopicPartition) -> int:
        return self._loop.run(self._client.position(tp))

    def poll(self, *, timeout_ms: float = 1000, max_records: int = 500) -> list[ConsumerRecord]:
        return self._loop.run(self._client.poll(timeout_ms=timeout_ms, max_records=max_records))

    def subscribe(self, topics: Iterable[str]) -> None:
        names = [topics] if isinstance(topics, str) else list(topics)

        async def run() -> None:
            self._client.subscribe(names)

        self._loop.run(run())

    def subscription(self) -> frozenset[str]:
        result: frozenset[str] = self._client.subscription()
        return result

    @property
    def generation(self) -> int:
        """The group generation of the current assignment (-1 outside a group)."""
        return self._client.generation

    def consumed_offsets(self) -> dict[TopicPartition, int]:
        """See :meth:`rift_client.Consumer.consumed_offsets`."""

        async def run() -> dict[TopicPartition, int]:
            return self._client.consumed_offsets()

        return self._loop.run(run())

    def take_restarted(self) -> frozenset[TopicPartition]:
        """See :meth:`rift_client.Consumer.take_restarted`."""

        async def run() -> frozenset[TopicPartition]:
            return self._client.take_restarted()

        return self._loop.run(run())

    def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        """Commit and wait for the broker's answer (see :meth:`rift_client.Consumer.commit`)."""
        self._loop.run(self._client.commit(offsets))

    def commit_async(
        self, offsets: Mapping[TopicPartition, int] | None = None
    ) -> concurrent.futures.Future[None]:
        """Start a commit; the returned future ends as :meth:`commit` would."""

        async def run() -> None:
            await self._client.commit_async(offsets)

        return asyncio.run_coroutine_threadsafe(run(), self._loop.loop)

    def committed(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int | None]:
        tps = list(partitions)
        return self._loop.run(self._client.committed(tps))


class Admin(_Facade):
    """Takes the settings of :class:`rift_client.Admin`."""

    _factory = _admin.Admin
    _client: _admin.Admin

    def create_topics(
        self, topics: Sequence[NewTopic], *, timeout_ms: float = 30000, validate_only: bool = False
    ) -> dict[str, ClientError | None]:
        return self._loop.run(
            self._client.create_topics(topics, timeout_ms=timeout_ms, validate_only=validate_only)
        )

    def create_topic(
        self,
        name: str,
        *,
        partitions: int = 1,
        replication_factor: int = 1,
        configs: Mapping[str, str] | None = None,
        timeout_ms: float = 30000,
    ) -> None:
        self._loop.run(
            self._client.create_topic(
                name,
                partitions=partitions,
                replication_factor=replication_factor,
                configs=configs,
                timeout_ms=timeout_ms,
            )
        )

    def list_topics(self, *, internal: bool = False) -> list[str]:
        return self._loop.run(self._client.list_topics(internal=internal))

    def describe_topics(self, topics: Iterable[str] | None = None) -> dict[str, TopicInfo]:
        return self._loop.run(self._client.describe_topics(topics))

    def describe_cluster(self) -> tuple[list[BrokerInfo], int]:
        return self._loop.run(self._client.describe_cluster())

    def wait_for_leaders(self, topic: str, *, timeout_ms: float = 30000) -> TopicInfo:
        return self._loop.run(self._client.wait_for_leaders(topic, timeout_ms=timeout_ms))

    def list_offsets(
        self, partitions: Iterable[TopicPartition], *, spec: str | int = "latest"
    ) -> dict[TopicPartition, int]:
        return self._loop.run(self._client.list_offsets(list(partitions), spec=spec))
