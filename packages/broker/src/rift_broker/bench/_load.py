"""The load generators of ``broker bench``: what one process does for ``seconds``.

Two drivers, same result type:

- ``rift``: ``tasks`` asyncio tasks share ``clients`` :class:`rift_client.Producer`
  instances; each task sends one record and awaits its delivery report, then the
  next (a closed loop, so ``tasks`` records are in flight at most). Latency is
  send-to-report, measured by the task.
- ``confluent``: one confluent-kafka (librdkafka) producer kept at ``window``
  outstanding records; latency is librdkafka's own ``msg.latency()`` (produce() to
  delivery report).

Latencies go to an ``array`` while the clock runs and into the histogram after
(bucketing costs a ``log`` per record, a fifth of the confluent driver's CPU).
Both stop producing at the deadline and then wait for what is in flight, so the
elapsed time covers every record counted. Only acknowledged records count; failed
deliveries are counted as errors, their latency not recorded.

:func:`worker_main` is the entry point of a ``--processes`` worker: it prepares its
producers, waits at the barrier so every worker starts together, runs, and puts
its :class:`LoadResult` on the queue.
"""

from __future__ import annotations

import asyncio
import os
import time
from array import array
from dataclasses import dataclass, field
from typing import Any, Literal

from rift_broker.bench._histogram import LatencyHistogram

__all__ = ["LoadResult", "LoadSpec", "run_load", "worker_main"]

ClientKind = Literal["rift", "confluent"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadSpec:
    bootstrap: str
    topic: str
    client: ClientKind
    acks: str  # "1" or "all"
    record_bytes: int
    seconds: float
    tasks: int
    clients: int
    window: int
    linger_ms: float


@dataclass(slots=True, kw_only=True)
class LoadResult:
    records: int = 0
    errors: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # CPU time of the load generator's process(es) while it ran
    first_error: str = ""
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)

    def merge(self, other: LoadResult) -> None:
        self.records += other.records
        self.errors += other.errors
        self.seconds = max(self.seconds, other.seconds)  # the workers ran side by side
        self.cpu_seconds += other.cpu_seconds
        self.first_error = self.first_error or other.first_error
        self.latency.merge(other.latency)


def run_load(spec: LoadSpec, *, ready: Any = None) -> LoadResult:
    """Run one process's load; ``ready()`` (if given) is called once producers are set up."""
    if spec.client == "confluent":
        return _confluent(spec, ready)
    return asyncio.run(_rift(spec, ready))


def worker_main(spec: LoadSpec, barrier: Any, results: Any) -> None:
    try:
        result = run_load(spec, ready=barrier.wait)
    except BaseException as e:
        result = LoadResult(errors=1, first_error=f"{type(e).__name__}: {e}")
        barrier.abort()  # release the others; they report the broken barrier
    results.put(result)


async def _rift(spec: LoadSpec, ready: Any) -> LoadResult:
    from rift_client import Producer

    timeout_ms = max(10_000.0, spec.seconds * 1000)
    producers = [
        Producer(
            spec.bootstrap,
            client_id=f"rift-bench-{os.getpid()}-{i}",
            acks=spec.acks,
            linger_ms=spec.linger_ms,
            request_timeout_ms=timeout_ms,
            delivery_timeout_ms=timeout_ms,
        )
        for i in range(spec.clients)
    ]
    result = LoadResult()
    value = os.urandom(spec.record_bytes)
    try:
        for producer in producers:
            await producer.start()
            # Metadata now, so the first timed send does not wait for it.
            await producer.send(spec.topic, value)
        if ready is not None:
            await asyncio.to_thread(ready)
        samples = array("d")
        cpu = time.process_time()
        start = time.perf_counter()
        deadline = start + spec.seconds

        async def task(producer: Producer) -> None:
            perf_counter = time.perf_counter
            while True:
                t0 = perf_counter()
                if t0 >= deadline:
                    return
                report = await producer.send(spec.topic, value)
                if report.ok:
                    samples.append(perf_counter() - t0)
                    result.records += 1
                else:
                    result.errors += 1
                    result.first_error = result.first_error or str(report.error)

        await asyncio.gather(*(task(producers[i % len(producers)]) for i in range(spec.tasks)))
        result.seconds = time.perf_counter() - start
        result.cpu_seconds = time.process_time() - cpu
        result.latency.add_all(samples)
    finally:
        for producer in producers:
            await producer.close(flush=False)
    return result


def _confluent(spec: LoadSpec, ready: Any) -> LoadResult:
    try:
        import confluent_kafka
    except ImportError:
        from rift_broker.errors import BrokerError

        raise BrokerError(
            "--client confluent needs confluent-kafka (pip install confluent-kafka)"
        ) from None

    result = LoadResult()
    config: dict[str, Any] = {
        "bootstrap.servers": spec.bootstrap,
        "client.id": f"rift-bench-{os.getpid()}",
        "acks": "all" if spec.acks == "all" else "1",
        "enable.idempotence": spec.acks == "all",
        "linger.ms": spec.linger_ms,
        "queue.buffering.max.messages": max(spec.window * 2, 1000),
        "message.timeout.ms": int(max(10_000.0, spec.seconds * 1000)),
    }
    producer = confluent_kafka.Producer(config)
    outstanding = 0
    samples = array("d")

    def delivered(error: Any, message: Any) -> None:
        nonlocal outstanding
        outstanding -= 1
        if error is not None:
            result.errors += 1
            result.first_error = result.first_error or str(error)
            return
        result.records += 1
        seconds = message.latency()
        if seconds is not None:
            samples.append(seconds)

    value = os.urandom(spec.record_bytes)
    # Metadata now, so the first timed record does not wait for it.
    outstanding += 1
    producer.produce(spec.topic, value, on_delivery=delivered)
    producer.flush(30)
    result.records = result.errors = 0  # the warm-up record is not measured
    result.first_error = ""
    del samples[:]
    if ready is not None:
        ready()
    produce = producer.produce
    poll = producer.poll
    cpu = time.process_time()
    start = time.perf_counter()
    deadline = start + spec.seconds
    while time.perf_counter() < deadline:
        room = min(spec.window - outstanding, 1000)
        if room <= 0:
            poll(0.0005)
            continue
        for _ in range(room):
            try:
                produce(spec.topic, value, on_delivery=delivered)
            except BufferError:  # librdkafka's queue is full: serve callbacks first
                break
            outstanding += 1
        poll(0)
    remaining = producer.flush(max(10.0, spec.seconds))
    result.seconds = time.perf_counter() - start
    result.cpu_seconds = time.process_time() - cpu  # librdkafka's threads included
    result.latency.add_all(samples)
    if remaining:
        result.errors += remaining
        result.first_error = result.first_error or f"{remaining} records undelivered at the end"
    return result
