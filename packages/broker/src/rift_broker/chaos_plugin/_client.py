"""The toolkit's client for the reference broker (any Kafka broker, in fact).

A worker's operations map onto our Kafka client:

- ``send`` produces the value (its decimal text) to the given partition with the
  workload's acks and idempotence; the completion is ``ok`` with the offset, ``fail``
  only when the client says the write certainly did not happen, ``info`` otherwise;
- ``poll`` reads on from the worker's positions in its assigned partitions (all of
  the topic's partitions until an ``assign``) and completes with what it read;
- ``assign`` sets those partitions and starts them from the beginning;
- ``final-read`` reads every partition from its start up to its high watermark.

A read changes nothing, so a read that failed is a ``fail``; but a read that did
return is ``ok`` even if empty.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from rift_chaos.client import DefiniteFailure
from rift_chaos.op import Op
from rift_chaos.remote import Node
from rift_chaos.system import SystemSettings
from rift_client import errors as client_errors
from rift_client.sync import Admin, Consumer, Producer
from rift_client.types import ConsumerRecord, TopicPartition

KAFKA_PORT = 9092


class BrokerClient:
    def __init__(self, *, settings: SystemSettings, nodes: Sequence[Node]) -> None:
        self.settings = settings
        self._nodes = tuple(nodes)
        self._producer: Producer | None = None
        self._consumer: Consumer | None = None
        self._bootstrap: list[str] = []
        self._timeout_ms = 5000.0

    def _all_partitions(self) -> list[TopicPartition]:
        return [
            TopicPartition(topic=self.settings.topic, partition=p)
            for p in range(self.settings.partitions)
        ]

    def open(self, node: Node, *, timeout: float) -> None:
        first = f"{node.host}:{KAFKA_PORT + node.port_offset}"
        others = [f"{n.host}:{KAFKA_PORT + n.port_offset}" for n in self._nodes if n != node]
        self._bootstrap = [first, *others]
        self._timeout_ms = timeout * 1000
        acks = {"all": "all", "1": 1, "0": 0}[self.settings.acks]
        self._producer = Producer(
            self._bootstrap,
            acks=acks,
            idempotent=self.settings.idempotence,
            linger_ms=0,
            request_timeout_ms=self._timeout_ms,
            delivery_timeout_ms=self._timeout_ms,
        )
        self._consumer = Consumer(
            self._bootstrap, request_timeout_ms=self._timeout_ms, fetch_max_wait_ms=100
        )
        self._consumer.assign(self._all_partitions())

    def invoke(self, op: Op) -> Op:
        if self._producer is None or self._consumer is None:
            return op.fail(error="client is not open")
        if op.f == "send":
            return self._send(op, self._producer)
        if op.f == "poll":
            try:
                records = self._consumer.poll(timeout_ms=min(self._timeout_ms, 100))
            except client_errors.ClientError as exc:
                raise DefiniteFailure(str(exc)) from exc  # a read changes nothing
            return op.ok(value={"records": _grouped(records)})
        if op.f == "assign":
            tps = [_tp(text) for text in op.value["partitions"]]
            self._consumer.assign(tps)
            self._consumer.seek_to_beginning(*tps)
            return op.ok()
        if op.f == "final-read":
            return op.ok(value={"records": self._read_everything()})
        return op.fail(error=f"unsupported operation {op.f!r}")

    def _send(self, op: Op, producer: Producer) -> Op:
        value = op.value
        report = producer.send(
            value["topic"], str(value["value"]).encode(), partition=int(value["partition"])
        )
        if report.ok:
            return op.ok(value={**value, "partition": report.partition, "offset": report.offset})
        error = f"{type(report.error).__name__}: {report.error}"
        return op.fail(error=error) if report.definite else op.info(error=error)

    def _read_everything(self) -> dict[str, list[list[Any]]]:
        """Every partition from its start to its high watermark.

        Right after faults heal, a new leader's high watermark can still trail what
        was committed (it learns it from its followers' next fetches), so the read
        goes on until the high watermarks hold still across two looks.
        """
        tps = self._all_partitions()
        out: dict[str, list[list[Any]]] = {f"{tp.topic}/{tp.partition}": [] for tp in tps}
        deadline = time.monotonic() + max(60.0, self._timeout_ms / 1000)
        with (
            Admin(self._bootstrap, request_timeout_ms=self._timeout_ms) as admin,
            Consumer(self._bootstrap, request_timeout_ms=self._timeout_ms) as reader,
        ):
            reader.assign(tps)
            reader.seek_to_beginning(*tps)
            previous: dict[TopicPartition, int] | None = None
            while True:
                ends = admin.list_offsets(tps, spec="latest")
                while any(reader.position(tp) < ends[tp] for tp in tps):
                    if time.monotonic() > deadline:
                        raise TimeoutError("final read did not reach the high watermarks")
                    for tp_key, rows in _grouped(reader.poll(timeout_ms=500)).items():
                        out[tp_key].extend(rows)
                if ends == previous or time.monotonic() > deadline:
                    return out
                previous = ends
                time.sleep(1.0)

    def close(self) -> None:
        for item in (self._producer, self._consumer):
            if item is not None:
                try:
                    item.close()
                except Exception:  # closing a broken client must not fail the worker
                    continue
        self._producer = self._consumer = None


def _tp(text: str) -> TopicPartition:
    topic, _, partition = text.rpartition("/")
    return TopicPartition(topic=topic, partition=int(partition))


def _grouped(records: Sequence[ConsumerRecord]) -> dict[str, list[list[Any]]]:
    out: dict[str, list[list[Any]]] = {}
    for r in records:
        value: Any = r.value.decode() if r.value is not None else None
        if isinstance(value, str) and value.lstrip("-").isdigit():
            value = int(value)
        out.setdefault(f"{r.topic}/{r.partition}", []).append([r.offset, value])
    return out
