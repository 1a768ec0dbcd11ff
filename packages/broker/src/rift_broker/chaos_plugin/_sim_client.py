"""Simulated client processes: an idempotent producer/consumer, an admin, a final reader.

Each writes its operations to the history as they happen, with the simulator's
virtual time in nanoseconds.

- :class:`SimClient` runs the scenario's operations of one logical client, one at a
  time. A ``send`` is an idempotent acks=all produce of one record: it goes to the
  partition leader it believes in, and on a timeout or a retriable error it is sent
  again *with the same producer id and sequence*, as a real idempotent producer
  does, until it is acknowledged (``ok`` with its offset) or its delivery timeout
  passes (``info``: it may still land). After an ``info`` the client goes on as a
  fresh process with a fresh producer id. A ``poll`` reads one partition from the
  client's position through the leader (up to the high watermark); an error answer
  is a ``fail`` (a read changes nothing), an unanswered request is sent again. A
  position below the partition's log start (retention deleted it) is answered
  OFFSET_OUT_OF_RANGE with the log start: the client moves there, as a consumer with
  ``auto.offset.reset=earliest`` does, and its next ok poll of the partition says so
  (``"assigned": {"t/p": start}``: the checker restarts the position there instead
  of calling the jump a poll skip).
- :class:`SimAdmin` creates the topic, retrying until the controller says it exists.
- :class:`FinalReader` waits until the faults are healed and the cluster has
  settled, then reads every partition from its log start to its high watermark,
  reporting each log start above 0 (``"log-start"``: acknowledged records below it
  were deleted by retention, not lost; the broker's invariants check that retention
  never passes the high watermark).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rift_broker.chaos_plugin._sim_messages import (
    CreateTopicAnswer,
    CreateTopicCall,
    ProduceAnswer,
    ProduceCall,
    ReadAnswer,
    ReadCall,
)
from rift_broker.records import build_batch
from rift_chaos.sim import NodeContext

TOPIC = "t"
NS_PER_MS = 1_000_000
# Errors after which retrying the same batch cannot help (sequence or epoch trouble).
FATAL_PRODUCE_ERRORS = frozenset({2, 45, 46, 47, 59})
OFFSET_OUT_OF_RANGE = 1
TOPIC_EXISTS = 36
NEVER = 1 << 40


@dataclass(slots=True, kw_only=True)
class ClientSettings:
    request_timeout_ms: int = 400
    # Shorter than the scenario's settle time, so every send has ended (ok or info)
    # before the final read starts.
    delivery_timeout_ms: int = 2_500
    retry_backoff_ms: int = 50


@dataclass(slots=True)
class Shared:
    """What every client of one scenario shares: the history and the acked records."""

    history: Any
    nodes: Sequence[str]
    partitions: int
    acked: list[tuple[str, int, int, int]] = field(default_factory=list)
    now_ns: Callable[[], int] = lambda: 0


class SimClient:
    def __init__(
        self,
        *,
        slot: int,
        clients: int,
        ops: Sequence[tuple[int, str]],
        shared: Shared,
        stop_at_ms: int,
        settings: ClientSettings | None = None,
    ) -> None:
        self._slot = slot
        self._clients = clients
        self._ops = list(ops)  # (at_ms, f), in time order
        self._stop_at_ms = stop_at_ms  # no operation starts later (they may back up)
        self._next_op = 0
        self._shared = shared
        self._settings = settings or ClientSettings()
        self.process = slot
        self._producer_id = 1_000 + slot
        self._sequences: dict[int, int] = {}
        self._value = 0
        self._leaders: dict[int, str] = {}
        self._positions: dict[int, int] = {}
        self._reset: dict[int, int] = {}  # partition -> the log start it moved to
        self._request = 0
        self._busy: str | None = None
        self._partition = 0
        self._batch = b""
        self._send_value: dict[str, Any] = {}
        self._poll_turn = 0

    # -- SimNode ------------------------------------------------------------------

    def start(self, ctx: NodeContext) -> None:
        self._arm_next(ctx)

    def timer(self, ctx: NodeContext, name: str) -> None:
        if name == "op":
            if self._busy is None:
                self._begin(ctx)
        elif name == "retry" and self._busy is not None:
            self._attempt(ctx)
        elif name == "deadline" and self._busy == "send":
            self._give_up(ctx, "delivery timeout")

    def receive(self, ctx: NodeContext, src: str, message: Any) -> None:
        if message.request_id != self._request or self._busy is None:
            return  # an answer to an attempt we gave up on, or a duplicate
        if isinstance(message, ProduceAnswer) and self._busy == "send":
            self._on_produce(ctx, src, message)
        elif isinstance(message, ReadAnswer) and self._busy == "poll":
            self._on_read(ctx, src, message)

    # -- operations ---------------------------------------------------------------

    def _arm_next(self, ctx: NodeContext) -> None:
        if self._next_op < len(self._ops):
            ctx.set_timer("op", max(0, self._ops[self._next_op][0] - ctx.now_ms))

    def _begin(self, ctx: NodeContext) -> None:
        if self._next_op >= len(self._ops) or ctx.now_ms >= self._stop_at_ms:
            return
        _, f = self._ops[self._next_op]
        self._next_op += 1
        history = self._shared.history
        now = ctx.now_ms * NS_PER_MS
        self._busy = f
        if f == "send":
            self._partition = ctx.random.randrange(self._shared.partitions)
            self._value += 1
            value = self._slot * 1_000_000 + self._value
            seq = self._sequences.get(self._partition, 0)
            self._batch = build_batch(
                [str(value).encode()],
                producer_id=self._producer_id,
                producer_epoch=0,
                base_sequence=seq,
            )
            self._send_value = {"topic": TOPIC, "partition": self._partition, "value": value}
            history.invoke(process=self.process, f="send", value=self._send_value, time=now)
            ctx.set_timer("deadline", self._settings.delivery_timeout_ms)
        else:
            self._partition = self._poll_turn % self._shared.partitions
            self._poll_turn += 1
            history.invoke(process=self.process, f="poll", value=None, time=now)
        self._attempt(ctx)

    def _target(self, ctx: NodeContext) -> str:
        leader = self._leaders.get(self._partition)
        return leader if leader is not None else ctx.random.choice(list(self._shared.nodes))

    def _attempt(self, ctx: NodeContext) -> None:
        self._request += 1
        target = self._target(ctx)
        if self._busy == "send":
            call: Any = ProduceCall(
                request_id=self._request, topic=TOPIC, partition=self._partition, batch=self._batch
            )
        else:
            call = ReadCall(
                request_id=self._request,
                topic=TOPIC,
                partition=self._partition,
                offset=self._positions.get(self._partition, 0),
            )
        ctx.send(target, call)
        # No answer in time: forget the leader we believed in and try again.
        self._leaders.pop(self._partition, None)
        ctx.set_timer("retry", self._settings.request_timeout_ms)

    def _on_produce(self, ctx: NodeContext, src: str, answer: ProduceAnswer) -> None:
        if answer.error == 0:
            self._leaders[self._partition] = src
            self._sequences[self._partition] = self._sequences.get(self._partition, 0) + 1
            value = {**self._send_value, "offset": answer.base_offset}
            self._shared.acked.append(
                (TOPIC, self._partition, answer.base_offset, self._send_value["value"])
            )
            self._finish(ctx, "ok", value)
        elif answer.error in FATAL_PRODUCE_ERRORS:
            self._give_up(ctx, f"error {answer.error}")
        else:
            self._retry_via(ctx, answer.leader)

    def _on_read(self, ctx: NodeContext, src: str, answer: ReadAnswer) -> None:
        partition = self._partition
        if answer.error != 0:
            if answer.leader is not None:
                self._leaders[partition] = answer.leader
            if (
                answer.error == OFFSET_OUT_OF_RANGE
                and answer.log_start_offset > self._positions.get(partition, 0)
            ):
                self._positions[partition] = answer.log_start_offset
                self._reset[partition] = answer.log_start_offset
            self._finish(ctx, "fail", None, error=f"error {answer.error}")
            return
        self._leaders[partition] = src
        records = [[offset, value] for offset, value in answer.records]
        if records:
            self._positions[partition] = records[-1][0] + 1
        value: dict[str, Any] = {"records": {f"{TOPIC}/{partition}": records}}
        reset = self._reset.pop(partition, None)
        if reset is not None:
            value["assigned"] = {f"{TOPIC}/{partition}": reset}
        self._finish(ctx, "ok", value)

    def _retry_via(self, ctx: NodeContext, leader: str | None) -> None:
        if leader is not None:
            self._leaders[self._partition] = leader
        ctx.set_timer("retry", self._settings.retry_backoff_ms)

    def _give_up(self, ctx: NodeContext, error: str) -> None:
        self._finish(ctx, "info", None, error=error)
        self.process += self._clients  # the op may still land: go on as a new process
        self._producer_id += 1_000
        self._sequences.clear()

    def _finish(self, ctx: NodeContext, kind: str, value: Any, *, error: str | None = None) -> None:
        process = self.process
        self._shared.history.complete(
            process=process, type=kind, value=value, error=error, time=ctx.now_ms * NS_PER_MS
        )
        self._busy = None
        self._request += 1  # late answers to this op are ignored
        ctx.set_timer("deadline", NEVER)  # re-arming is how a timer is cancelled
        ctx.set_timer("retry", NEVER)
        # Operations due while this one ran start now, one at a time.
        if self._next_op < len(self._ops) and self._ops[self._next_op][0] <= ctx.now_ms:
            ctx.set_timer("op", 0)
        else:
            self._arm_next(ctx)


class SimAdmin:
    """Creates the topic through any node, retrying until it exists."""

    def __init__(
        self,
        *,
        nodes: Sequence[str],
        partitions: int,
        min_insync_replicas: int,
        configs: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self._nodes = list(nodes)
        self._partitions = partitions
        self._min_insync = min_insync_replicas
        self._configs = configs
        self._request = 0
        self.done = False

    def start(self, ctx: NodeContext) -> None:
        ctx.set_timer("create", 500)

    def timer(self, ctx: NodeContext, name: str) -> None:
        if self.done:
            return
        self._request += 1
        call = CreateTopicCall(
            request_id=self._request,
            topic=TOPIC,
            partitions=self._partitions,
            min_insync_replicas=self._min_insync,
            configs=self._configs,
        )
        ctx.send(ctx.random.choice(self._nodes), call)
        ctx.set_timer("create", 300)

    def receive(self, ctx: NodeContext, src: str, message: Any) -> None:
        if isinstance(message, CreateTopicAnswer) and message.error in (0, TOPIC_EXISTS):
            self.done = True


class FinalReader:
    """After healing: reads each partition from its log start to its high watermark."""

    def __init__(self, *, shared: Shared, at_ms: int, process: int) -> None:
        self._shared = shared
        self._at_ms = at_ms
        self._process = process
        self._partition = 0
        self._records: dict[int, list[list[int]]] = {}
        self._starts: dict[int, int] = {}  # partition -> its log start, if above 0
        self._leader: str | None = None
        self._request = 0
        self.done = False
        self.started = False

    def start(self, ctx: NodeContext) -> None:
        ctx.set_timer("begin", max(0, self._at_ms - ctx.now_ms))

    def timer(self, ctx: NodeContext, name: str) -> None:
        if self.done:
            return
        if not self.started:
            self.started = True
            self._shared.history.invoke(
                process=self._process, f="final-read", value=None, time=ctx.now_ms * NS_PER_MS
            )
        self._leader = None if name == "retry" else self._leader
        self._ask(ctx)

    def _next_offset(self) -> int:
        """Where the read of the current partition goes on: after its last record,
        else at its log start."""
        records = self._records.get(self._partition)
        return records[-1][0] + 1 if records else self._starts.get(self._partition, 0)

    def _ask(self, ctx: NodeContext) -> None:
        self._request += 1
        offset = self._next_offset()
        target = self._leader or ctx.random.choice(list(self._shared.nodes))
        call = ReadCall(
            request_id=self._request, topic=TOPIC, partition=self._partition, offset=offset
        )
        ctx.send(target, call)
        ctx.set_timer("retry", 300)

    def receive(self, ctx: NodeContext, src: str, message: Any) -> None:
        if self.done or not isinstance(message, ReadAnswer) or message.request_id != self._request:
            return
        partition = self._partition
        records = self._records.setdefault(partition, [])
        if message.error == OFFSET_OUT_OF_RANGE and message.log_start_offset > self._next_offset():
            # Retention deleted what we were to read next: read the partition again,
            # from its log start (one read of it, with no gap in it).
            self._leader = src
            records.clear()
            self._starts[partition] = message.log_start_offset
            self._ask(ctx)
            return
        if message.error != 0:
            self._leader = message.leader
            ctx.set_timer("again", 50)
            return
        self._leader = src
        records.extend([offset, value] for offset, value in message.records)
        if message.records or self._next_offset() < message.high_watermark:
            self._ask(ctx)
            return
        self._partition += 1
        self._leader = None
        if self._partition < self._shared.partitions:
            self._ask(ctx)
            return
        self.done = True
        ctx.set_timer("retry", NEVER)
        value: dict[str, Any] = {
            "records": {f"{TOPIC}/{p}": rs for p, rs in sorted(self._records.items())}
        }
        if self._starts:
            value["log-start"] = {f"{TOPIC}/{p}": o for p, o in sorted(self._starts.items())}
        self._shared.history.complete(
            process=self._process, type="ok", value=value, time=ctx.now_ms * NS_PER_MS
        )
