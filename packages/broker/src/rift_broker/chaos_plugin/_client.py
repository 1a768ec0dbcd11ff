"""The toolkit's client for the reference broker (any Kafka broker, in fact).

A worker's operations map onto our Kafka client:

- ``send`` produces the value (its decimal text) to the given partition with the
  workload's acks and idempotence; the completion is ``ok`` with the offset, ``fail``
  only when the client says the write certainly did not happen, ``info`` otherwise;
- ``poll`` reads on from the worker's positions in its assigned partitions (all of
  the topic's partitions until an ``assign``) and completes with what it read;
- ``assign`` sets those partitions and starts them from the beginning;
- ``subscribe`` makes the worker a member of the workload's consumer group (the
  system option ``group``, default ``rift-chaos``); from then on the group assigns
  its partitions. A poll carries ``"assigned": {"topic/partition": start}`` for the
  partitions the group handed the worker since the last poll, each with the offset
  it resumed at (the group's committed offset). Offsets in a partition are
  consecutive, so ``start`` is the first offset the poll returned there, else the
  position it is waiting at;
- ``commit`` commits the worker's consumed positions and completes with them as
  ``{"offsets": {"topic/partition": offset}}``: ``ok`` when the coordinator
  acknowledged, ``fail`` when the client says it certainly was not written;
- ``final-read`` reads every partition from its start up to its high watermark,
  and reports each log start above 0 after the read (``"log-start"``: retention
  deleted the records below it, acknowledged or not).

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
        self._group = str(settings.options.get("group", "rift-chaos"))
        self._group_session_ms = float(settings.options.get("group_session_timeout_ms", 6000))
        self._subscribed = False

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
            return self._poll(op, self._consumer)
        if op.f == "assign":
            tps = [_tp(text) for text in op.value["partitions"]]
            if self._subscribed:
                self._consumer = self._fresh_consumer(group=False)
            self._consumer.assign(tps)
            self._consumer.seek_to_beginning(*tps)
            return op.ok()
        if op.f == "subscribe":
            if not self._subscribed:
                self._consumer = self._fresh_consumer(group=True)
            self._consumer.subscribe(list(op.value["topics"]))
            return op.ok()
        if op.f == "commit":
            return self._commit(op, self._consumer)
        if op.f == "final-read":
            return op.ok(value=self._read_everything())
        return op.fail(error=f"unsupported operation {op.f!r}")

    def _fresh_consumer(self, *, group: bool) -> Consumer:
        """A new consumer in place of the worker's current one (a group member when
        ``group``: leaving one group's assignment for a manual one, or joining, is a
        new consumer, as Kafka clients require)."""
        if self._consumer is not None:
            try:
                self._consumer.close()
            except client_errors.ClientError:
                pass  # a broken consumer is replaced all the same
        self._consumer = None
        self._subscribed = group
        if not group:
            return Consumer(
                self._bootstrap, request_timeout_ms=self._timeout_ms, fetch_max_wait_ms=100
            )
        return Consumer(
            self._bootstrap,
            request_timeout_ms=self._timeout_ms,
            fetch_max_wait_ms=100,
            group_id=self._group,
            session_timeout_ms=self._group_session_ms,
            heartbeat_interval_ms=self._group_session_ms / 6,
            rebalance_timeout_ms=self._group_session_ms * 2,
        )

    def _poll(self, op: Op, consumer: Consumer) -> Op:
        try:
            records = consumer.poll(timeout_ms=min(self._timeout_ms, 100))
        except client_errors.ClientError as exc:
            raise DefiniteFailure(str(exc)) from exc  # a read changes nothing
        value: dict[str, Any] = {"records": _grouped(records)}
        if self._subscribed:
            assigned = _restarts(consumer, records)
            if assigned:
                value["assigned"] = assigned
        return op.ok(value=value)

    def _commit(self, op: Op, consumer: Consumer) -> Op:
        offsets = consumer.consumed_offsets()
        value = {"offsets": {f"{tp.topic}/{tp.partition}": o for tp, o in offsets.items()}}
        try:
            consumer.commit(offsets)
        except client_errors.ClientError as exc:
            error = f"{type(exc).__name__}: {exc}"
            return (
                op.fail(value=value, error=error)
                if exc.definite
                else op.info(value=value, error=error)
            )
        return op.ok(value=value)

    def _send(self, op: Op, producer: Producer) -> Op:
        value = op.value
        report = producer.send(
            value["topic"], str(value["value"]).encode(), partition=int(value["partition"])
        )
        if report.ok:
            return op.ok(value={**value, "partition": report.partition, "offset": report.offset})
        error = f"{type(report.error).__name__}: {report.error}"
        return op.fail(error=error) if report.definite else op.info(error=error)

    def _read_everything(self) -> dict[str, Any]:
        """Every partition from its start to its high watermark, and the log starts.

        Right after faults heal, a new leader's high watermark can still trail what
        was committed (it learns it from its followers' next fetches), so the read
        goes on until the high watermarks hold still across two looks. The log
        starts are asked for once the read is done: a record below one is gone
        whether or not the read began before its deletion.
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
                    starts = admin.list_offsets(tps, spec="earliest")
                    value: dict[str, Any] = {"records": out}
                    deleted = {f"{tp.topic}/{tp.partition}": o for tp, o in starts.items() if o}
                    if deleted:
                        value["log-start"] = dict(sorted(deleted.items()))
                    return value
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


def _restarts(consumer: Consumer, records: Sequence[ConsumerRecord]) -> dict[str, int]:
    """The partitions the group restarted during this poll, each with the offset it
    restarted at: the first offset the poll returned there (offsets in a partition
    are consecutive, and every record comes after the restart), else the position
    the consumer waits at."""
    restarted = consumer.take_restarted()
    if not restarted:
        return {}
    first: dict[TopicPartition, int] = {}
    for r in records:
        first.setdefault(TopicPartition(topic=r.topic, partition=r.partition), r.offset)
    positions = consumer.consumed_offsets()
    return {
        f"{tp.topic}/{tp.partition}": first.get(tp, positions[tp])
        for tp in restarted
        if tp in positions
    }


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
