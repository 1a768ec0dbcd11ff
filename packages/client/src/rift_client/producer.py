"""The asyncio producer: the driver around the accumulator and the retry policy.

``send`` places a record (murmur2 for keys, sticky for keyless) into the
:class:`~rift_client.accumulator.Accumulator`; one sender task drains ready batches,
groups them by partition leader into Produce requests, and resolves every record
with a :class:`~rift_client.outcome.DeliveryReport` decided by the
:class:`~rift_client.outcome.RetryPolicy` (see :mod:`rift_client.outcome` for when
an outcome is definite). Errors that say the leadership view is stale refresh the
metadata, so a retry goes to the new leader by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from rift_client._produce_wire import init_producer_id_request, produce_answers, produce_request
from rift_client.accumulator import Accumulator, ProducerBatch
from rift_client.cluster import Cluster
from rift_client.compression import Compression, available
from rift_client.errors import (
    ClientClosed,
    ClientError,
    ClientTimeout,
    InvalidArgument,
    ProtocolError,
    for_code,
)
from rift_client.outcome import Action, DeliveryReport, RetryPolicy
from rift_client.partitioner import Partitioner
from rift_client.protocol import Api
from rift_client.records import Header, Record, estimate_size
from rift_client.types import TopicInfo, TopicPartition

__all__ = ["Producer"]

log = logging.getLogger(__name__)

_ACKS = {"all": -1, "-1": -1, "1": 1, "0": 0}
_DUPLICATE_SEQUENCE = 46


class Producer:
    """``async with Producer("host:port") as p: report = await p.send("t", b"v")``.

    Settings: ``acks`` 0, 1 or "all"; ``idempotent`` defaults to ``acks == "all"``
    (InitProducerId plus per-partition sequence numbers; needs acks=all);
    ``linger_ms`` and ``max_batch_bytes`` bound each partition's batch;
    ``compression`` none/gzip/snappy/lz4/zstd; ``request_timeout_ms`` bounds one
    attempt, ``delivery_timeout_ms`` all attempts of a record; ``seed`` makes the
    sticky partitioner's choices reproducible. One batch per partition is in flight
    at a time, so retries never reorder a partition.
    """

    def __init__(
        self,
        bootstrap_servers: str | Sequence[str],
        *,
        client_id: str = "rift-producer",
        acks: int | str = "all",
        idempotent: bool | None = None,
        linger_ms: float = 5.0,
        max_batch_bytes: int = 16384,
        compression: str | Compression = "none",
        request_timeout_ms: float = 30000,
        delivery_timeout_ms: float = 120000,
        retry_backoff_ms: float = 100,
        retry_backoff_max_ms: float = 1000,
        seed: int | None = None,
    ) -> None:
        acks_value = _ACKS.get(str(acks).lower())
        if acks_value is None:
            raise InvalidArgument(f"acks must be 0, 1 or 'all', not {acks!r}")
        if idempotent is None:
            idempotent = acks_value == -1
        if idempotent and acks_value != -1:
            raise InvalidArgument("an idempotent producer needs acks='all'")
        self.compression = Compression.parse(compression)
        if self.compression not in available():
            raise InvalidArgument(f"{self.compression.name.lower()} is not installed here")
        if delivery_timeout_ms < request_timeout_ms:
            raise InvalidArgument("delivery_timeout_ms must be >= request_timeout_ms")
        self.acks = acks_value
        self.idempotent = idempotent
        self.request_timeout = request_timeout_ms / 1000
        self.cluster = Cluster(
            bootstrap_servers, client_id=client_id, request_timeout=self.request_timeout
        )
        self.policy = RetryPolicy(
            backoff=retry_backoff_ms / 1000,
            backoff_max=max(retry_backoff_max_ms, retry_backoff_ms) / 1000,
            deadline=delivery_timeout_ms / 1000,
        )
        self._acc = Accumulator(
            linger=linger_ms / 1000, max_batch_bytes=max_batch_bytes, idempotent=idempotent
        )
        self._partitioner = Partitioner(rng=random.Random(seed))
        self.producer_id = -1
        self.producer_epoch = -1
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._refresh: set[str] = set()
        self._closed = False
        # Per topic: the TopicInfo last used and its partitions with a leader.
        self._available: dict[str, tuple[TopicInfo, list[int]]] = {}
        self._tps: dict[tuple[str, int], TopicPartition] = {}

    # --- lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        if self._sender is not None:
            return
        await self.cluster.refresh([])
        if self.idempotent:
            await self._init_producer_id()
        self._sender = asyncio.create_task(self._run(), name="rift-producer-sender")
        self._sender.add_done_callback(self._sender_done)

    async def __aenter__(self) -> Producer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self, *, flush: bool = True) -> None:
        """Deliver (or time out) what is queued, then close the connections."""
        if self._closed:
            return
        if flush and self._sender is not None:
            await self.flush()
        self._closed = True
        for batch in self._acc.batches():
            self._finish(
                batch,
                ok=False,
                definite=batch.attempts == 0 and not batch.maybe_applied,
                error=ClientClosed("producer closed before delivery"),
            )
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.cluster.close()

    def _sender_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        log.error("the producer's sender stopped", exc_info=task.exception())
        error = ClientClosed(f"the producer's sender stopped: {task.exception()!r}")
        for batch in self._acc.batches():
            unknown = batch.attempts > 0 or batch.maybe_applied
            self._finish(batch, ok=False, definite=not unknown, error=error)
        self._closed = True
        self._idle.set()

    # --- sending -------------------------------------------------------------

    async def enqueue(
        self,
        topic: str,
        value: bytes | None = None,
        *,
        key: bytes | None = None,
        headers: Sequence[Header] = (),
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> asyncio.Future[DeliveryReport]:
        """Queue a record; the future resolves with its delivery report."""
        if self._closed:
            raise ClientClosed("the producer is closed")
        if self._sender is None:
            await self.start()
        future: asyncio.Future[DeliveryReport] = asyncio.get_running_loop().create_future()
        record = Record(
            key=key,
            value=value,
            headers=tuple(headers),
            timestamp_ms=int(time.time() * 1000) if timestamp_ms is None else timestamp_ms,
        )
        info = self.cluster.topics.get(topic)
        available_parts = self._available.get(topic) if info is not None else None
        try:
            if available_parts is None or available_parts[0] is not info:
                info = await self._topic(topic)
                # TopicInfo is immutable and replaced on every refresh: the partitions
                # with a leader are worked out once per version, not per record.
                available_parts = (info, [p.partition for p in info.partitions if p.leader >= 0])
                self._available[topic] = available_parts
        except ClientError as exc:
            future.set_result(
                DeliveryReport(
                    topic=topic,
                    partition=-1 if partition is None else partition,
                    ok=False,
                    definite=True,
                    error=exc,
                )
            )
            return future
        assert info is not None
        count = len(info.partitions)
        size = estimate_size(record)
        if partition is not None and not 0 <= partition < count:
            raise InvalidArgument(f"topic {topic!r} has partitions 0..{count - 1}, not {partition}")
        if partition is None:
            available = available_parts[1]
            partition = self._partitioner.partition(
                topic, key, partitions=count, available=available
            )
            if key is None and self._acc.needs_new_batch(
                self._tp(topic, partition), record, size=size
            ):
                self._partitioner.on_new_batch(topic, previous=partition, partitions=count)
                partition = self._partitioner.partition(
                    topic, key, partitions=count, available=available
                )
        self._acc.append(self._tp(topic, partition), record, future, now=self._now(), size=size)
        self._idle.clear()
        self._wakeup.set()
        return future

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        *,
        key: bytes | None = None,
        headers: Sequence[Header] = (),
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> DeliveryReport:
        """Send one record and wait for its delivery report (never raises ClientError
        for delivery problems: they are in the report)."""
        future = await self.enqueue(
            topic, value, key=key, headers=headers, partition=partition, timestamp_ms=timestamp_ms
        )
        return await future

    async def flush(self) -> None:
        """Wait until every queued record has a delivery report."""
        self._acc.begin_flush()
        try:
            self._wakeup.set()
            while self._acc.pending and self._sender is not None and not self._sender.done():
                self._idle.clear()
                await self._idle.wait()
        finally:
            self._acc.end_flush()

    async def _topic(self, topic: str) -> TopicInfo:
        """The topic's metadata, waiting up to the request timeout for it to appear
        (a topic that was just created may have no leaders yet)."""
        give_up = self._now() + self.request_timeout
        attempts = 0
        while True:
            attempts += 1
            try:
                info = await self.cluster.topic(topic)
                if any(p.leader >= 0 for p in info.partitions):
                    return info
                self.cluster.topics.pop(topic, None)
                error: ClientError = for_code(5, f"{topic!r} has no leader yet", definite=True)
            except ClientError as exc:
                if not exc.retriable:
                    raise
                error = exc
            if self._now() + self.policy.delay(attempts) >= give_up:
                raise error
            await asyncio.sleep(self.policy.delay(attempts))

    def _tp(self, topic: str, partition: int) -> TopicPartition:
        """One shared TopicPartition per partition (it is immutable)."""
        key = (topic, partition)
        tp = self._tps.get(key)
        if tp is None:
            tp = self._tps[key] = TopicPartition(topic=topic, partition=partition)
        return tp

    # --- the sender ----------------------------------------------------------

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    async def _run(self) -> None:
        while True:
            now = self._now()
            for batch in self._acc.expired(deadline=self.policy.deadline, now=now):
                self._finish(
                    batch,
                    ok=False,
                    definite=not batch.maybe_applied,
                    error=ClientTimeout(
                        "delivery timeout expired", definite=not batch.maybe_applied
                    ),
                )
            if self._acc.needs_reset and self._acc.in_flight == 0:
                await self._reset_producer()
            by_leader: dict[int, list[ProducerBatch]] = defaultdict(list)
            for batch in self._acc.ready(now=now):
                info = self.cluster.leader(batch.tp)
                if info is None or info.leader < 0 or info.leader not in self.cluster.brokers:
                    self._refresh.add(batch.tp.topic)
                    self._acc.retry(batch, retry_at=now + self.policy.backoff)
                    continue
                by_leader[info.leader].append(batch)
            for node, batches in by_leader.items():
                self._spawn(self._produce(node, batches))
            if self._refresh:
                topics, self._refresh = set(self._refresh), set()
                self._spawn(self._refresh_metadata(topics))
            if not self._acc.pending:
                self._idle.set()
            wake = self._acc.next_wakeup(now=now)
            self._wakeup.clear()
            timeout = None if wake is None else max(0.0, wake - self._now())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wakeup.wait()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _refresh_metadata(self, topics: set[str]) -> None:
        with contextlib.suppress(ClientError):
            await self.cluster.refresh(topics)
        self._wakeup.set()

    async def _produce(self, node: int, batches: list[ProducerBatch]) -> None:
        try:
            await self._produce_once(node, batches)
        except Exception as exc:
            # A bug or an answer we cannot use: never leave a batch in flight forever.
            log.exception("produce to broker %s failed unexpectedly", node)
            error = ProtocolError(f"unexpected failure: {exc!r}", definite=False)
            for batch in batches:
                if self._acc.is_in_flight(batch):
                    batch.maybe_applied = True
                    self._acc.fail(batch)
                    self._finish(batch, ok=False, definite=False, error=error)
        finally:
            self._wakeup.set()

    async def _produce_once(self, node: int, batches: list[ProducerBatch]) -> None:
        try:
            conn = await self.cluster.connection(node)
            version = conn.version(Api.PRODUCE)
        except ClientError as exc:
            for batch in batches:
                self._on_error(batch, exc)
            return
        for batch in batches:
            batch.attempts += 1
        body = produce_request(
            version,
            batches,
            acks=self.acks,
            timeout=self.request_timeout,
            producer_id=self.producer_id,
            producer_epoch=self.producer_epoch,
            compression=self.compression,
        )
        try:
            response = await conn.send(
                body, time_limit=self.request_timeout + 1.0, expect_response=self.acks != 0
            )
        except ClientError as exc:
            for batch in batches:
                self._on_error(batch, exc)
            return
        if self.acks == 0:
            for batch in batches:
                self._acc.complete(batch)
                self._finish(batch, ok=False, definite=False, error=None)
            return
        answers = produce_answers(response)
        for batch in batches:
            answer = answers.get(batch.tp)
            if answer is None:
                self._on_error(batch, ProtocolError("the broker did not answer for this partition"))
            elif answer.error_code in (0, _DUPLICATE_SEQUENCE):
                self._acc.complete(batch)
                base = answer.base_offset if answer.error_code == 0 else -1
                self._finish(batch, ok=True, definite=True, error=None, base_offset=base)
            else:
                self._on_error(batch, for_code(answer.error_code, answer.message))

    def _on_error(self, batch: ProducerBatch, error: ClientError) -> None:
        if not error.definite:
            batch.maybe_applied = True
        decision = self.policy.decide(
            error,
            attempts=batch.attempts,
            started_at=batch.created_at,
            maybe_applied=batch.maybe_applied,
            now=self._now(),
        )
        if decision.refresh_metadata:
            self._refresh.add(batch.tp.topic)
        if decision.action is Action.RETRY:
            self._acc.retry(batch, retry_at=decision.retry_at)
        else:
            self._acc.fail(batch)
            self._finish(batch, ok=False, definite=decision.definite, error=error)

    def _finish(
        self,
        batch: ProducerBatch,
        *,
        ok: bool,
        definite: bool,
        error: ClientError | None,
        base_offset: int = -1,
    ) -> None:
        for i, (record, token) in enumerate(zip(batch.records, batch.tokens, strict=True)):
            assert isinstance(token, asyncio.Future)
            if token.done():
                continue
            token.set_result(
                DeliveryReport(
                    topic=batch.tp.topic,
                    partition=batch.tp.partition,
                    ok=ok,
                    definite=definite,
                    offset=base_offset + i if base_offset >= 0 else -1,
                    timestamp_ms=record.timestamp_ms,
                    error=error,
                )
            )

    # --- idempotence ---------------------------------------------------------

    async def _init_producer_id(self, *, within: float | None = None) -> None:
        deadline = self._now() + (self.policy.deadline if within is None else within)
        attempts = 0
        while True:
            attempts += 1
            try:
                conn = await self.cluster.any_connection()
                version = conn.version(Api.INIT_PRODUCER_ID)
                body = init_producer_id_request(version)
                response = await conn.send(body, time_limit=self.request_timeout)
                if response.error_code != 0:
                    raise for_code(int(response.error_code), "InitProducerId failed")
                self.producer_id = int(response.producer_id)
                self.producer_epoch = int(response.producer_epoch)
                return
            except ClientError as exc:
                if not exc.retriable or self._now() >= deadline:
                    raise
                await asyncio.sleep(self.policy.delay(attempts))

    async def _reset_producer(self) -> None:
        with contextlib.suppress(ClientError):
            await self._init_producer_id(within=self.request_timeout)
            self._acc.reset()
