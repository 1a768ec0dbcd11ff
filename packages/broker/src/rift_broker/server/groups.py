"""The asyncio driver of the group coordinator: requests, the clock and ``__consumer_offsets``.

Theory of operation
-------------------
A :class:`GroupDriver` owns one sans-IO :class:`~rift_broker.group.GroupCoordinator`,
which decides everything, and connects it to the world:

- **Requests.** A handler awaits ``driver.join(...)`` (or ``sync``, ``heartbeat``,
  ``leave``, ``commit_offsets``, ``fetch_offsets``). The driver numbers the request,
  hands it to the coordinator, and resolves the request's future when the coordinator
  emits the reply with that number: at once, or later, from another member's
  request, a timer or an append. If the handler is cancelled (its connection
  closed), the reply is dropped when it comes; the member stays until its session
  expires, as in Kafka.
- **Appends.** Every :class:`~rift_broker.group.Append` goes to the
  :class:`OffsetsLog`, whose completion callback feeds ``on_appended`` back: an
  OffsetCommit is answered only once its records are committed, and the members'
  SyncGroups only once the leader's assignment is.
- **Time.** One timer, armed at ``coordinator.next_deadline()`` and re-armed after
  every call, fires ``tick`` (session expiries, join deadlines, the initial
  rebalance delay). The :class:`~rift_broker.server.clock.Clock` is the wall clock
  in production and a :class:`~rift_broker.server.clock.ManualClock` in tests.
- **Leadership.** The host calls :meth:`GroupDriver.load` when this node becomes
  the leader of ``__consumer_offsets`` partition ``p`` and :meth:`GroupDriver.unload`
  when it stops being it. Loading replays every record of the partition (the latest
  value per key wins, a tombstone deletes), so committed offsets and groups survive a
  restart or a failover; a record that does not decode is skipped with a log line
  rather than losing the rest. Unloading answers every waiting request of the
  partition's groups with NOT_COORDINATOR, which sends clients to FindCoordinator.

Everything runs on the event loop's thread. Outputs go through one queue, so the
coordinator is never entered from inside itself, even when the storage completes an
append before ``append`` returns.

The storage interface
---------------------
:class:`OffsetsLog` is all the driver knows of ``__consumer_offsets``:

- ``append(partition, records, done)`` writes ``records`` to ``partition`` as one
  batch (appends to one partition keep their call order) and calls ``done(error)``
  exactly once, on the loop's thread: with 0 once the batch is *committed* (durable
  under the broker's policy: below the partition's high watermark), else with the
  Kafka error code of the failure (NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS,
  KAFKA_STORAGE_ERROR, REQUEST_TIMED_OUT, ...; the coordinator translates them into
  what group clients expect). It never raises, and may call ``done`` before it
  returns.
- ``read(partition)`` returns every record the partition holds, in log order.

:class:`~rift_broker.server.offsets_log.LocalOffsetsLog` is the single-node broker's
storage and :class:`~rift_broker.server.offsets_log.MemoryOffsetsLog` the in-memory
fake.

Plugging it into a replicated broker: give the driver a storage whose ``append``
appends on this node (the partition leader) with acks=all semantics and calls
``done(0)`` when the high watermark passes the batch, or the error when leadership
is lost or the ISR too small; call ``load(p)`` when this node becomes leader of
``__consumer_offsets``-``p`` and ``unload(p)`` when it stops (an append made before
``unload`` that completes later is ignored); put the driver in ``ctx.groups``. The
handlers of :mod:`rift_broker.server.handlers.groups` need nothing else, except
FindCoordinator, which must answer the leader of ``partition_for(group)``
(:func:`~rift_broker.server.handlers.groups.find_coordinator_response` takes the
answer as a function).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol, TypeVar

from rift_broker.group import (
    Append,
    CommitPartitionResult,
    CommitReply,
    FetchReply,
    GroupConfig,
    GroupCoordinator,
    GroupErrorCode,
    GroupKey,
    GroupView,
    HeartbeatReply,
    JoinProtocol,
    JoinReply,
    LeaveReply,
    OffsetCommitEntry,
    OffsetsRecord,
    Output,
    RecordFormatError,
    Reply,
    SyncReply,
    decode_group_value,
    decode_key,
    decode_offset_value,
)
from rift_broker.server.clock import Cancellable, Clock, WallClock

__all__ = ["OffsetsLog", "GroupDriver"]

_log = logging.getLogger("rift_broker.groups")

R = TypeVar("R", bound=Reply)


class OffsetsLog(Protocol):
    """The ``__consumer_offsets`` partitions, as the group driver uses them.

    Both methods are called on the event loop's thread, for partitions this node
    leads (between the host's ``load(p)`` and ``unload(p)``).
    """

    def append(
        self, partition: int, records: Sequence[OffsetsRecord], done: Callable[[int], None]
    ) -> None:
        """Write ``records`` to ``partition`` as one batch, after every earlier append
        to it, and call ``done(error)`` exactly once on the loop's thread: 0 once the
        batch is committed (below the high watermark, durable under the broker's
        policy), else the Kafka error code of the failure. Never raises; may call
        ``done`` before returning."""
        ...

    def read(self, partition: int) -> Iterable[OffsetsRecord]:
        """Every record ``partition`` holds, in log order."""
        ...


class GroupDriver:
    """Runs a :class:`GroupCoordinator` on the event loop (see the module docstring)."""

    def __init__(
        self,
        storage: OffsetsLog,
        *,
        num_partitions: int = 50,
        config: GroupConfig | None = None,
        clock: Clock | None = None,
        partition_exists: Callable[[str, int], bool] | None = None,
        member_id_factory: Callable[[str], str] | None = None,
    ) -> None:
        """``partition_exists(topic, partition)``: commits to other partitions get
        UNKNOWN_TOPIC_OR_PARTITION, as in Kafka (default: accept every partition).
        ``member_id_factory(client_id)``: new member ids; the default is Kafka's
        ``client_id-<uuid>``, never reused, so a member expired before a restart cannot
        pass for a new one after it."""
        self.coordinator = GroupCoordinator(
            num_partitions=num_partitions,
            config=config,
            member_id_factory=member_id_factory or _random_member_id,
        )
        self._storage = storage
        self._clock: Clock = clock if clock is not None else WallClock()
        self._partition_exists = partition_exists
        self._loaded: set[int] = set()
        self._next_request = 1
        self._waiters: dict[int, asyncio.Future[Reply]] = {}
        self._queue: deque[Output] = deque()
        self._draining = False
        self._in_flight: dict[int, Append] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self._timer: Cancellable | None = None
        self._timer_at: int | None = None
        self._closed = False

    # -- leadership of __consumer_offsets partitions ------------------------------

    @property
    def num_partitions(self) -> int:
        return self.coordinator.num_partitions

    @property
    def loaded(self) -> frozenset[int]:
        """The ``__consumer_offsets`` partitions whose groups this driver serves."""
        return frozenset(self._loaded)

    def load(self, partition: int) -> None:
        """This node now leads ``partition``: replay its records and serve its groups."""
        if self._closed:
            raise RuntimeError("the group driver is closed")
        skipped: list[int] = []
        records = _decodable(self._storage.read(partition), skipped)
        outputs = self.coordinator.load(
            partition=partition, records=records, now_ms=self._clock.now_ms()
        )
        self._loaded.add(partition)
        if skipped:
            _log.error(
                "skipped %d undecodable record(s) of __consumer_offsets-%d (first at index %d)",
                len(skipped),
                partition,
                skipped[0],
            )
        self._take(outputs)

    def unload(self, partition: int) -> None:
        """This node no longer leads ``partition``: its waiting requests get NOT_COORDINATOR."""
        self._loaded.discard(partition)
        self._take(self.coordinator.unload(partition=partition, now_ms=self._clock.now_ms()))

    def load_all(self) -> None:
        """Load every partition (a single node leads them all)."""
        for partition in range(self.num_partitions):
            self.load(partition)

    async def close(self, *, timeout_s: float = 5.0) -> None:
        """Stop serving: wait (up to ``timeout_s``) for appends in flight, so commits that
        reach the log are answered as such, then unload every partition (every waiting
        request is answered) and stop the timer. Requests after this get NOT_COORDINATOR."""
        if self._closed:
            return
        if self._in_flight:
            try:
                await asyncio.wait_for(self._idle.wait(), timeout_s)
            except TimeoutError:
                _log.warning("%d offsets append(s) still in flight at close", len(self._in_flight))
        for partition in sorted(self._loaded):
            self.unload(partition)
        self._closed = True
        self._disarm()

    # -- requests (each returns its reply) ------------------------------------------

    def is_coordinator(self, group_id: str) -> bool:
        """Whether this driver serves ``group_id`` (its partition is loaded)."""
        return self.coordinator.owns(group_id)

    async def join(
        self,
        *,
        group_id: str,
        member_id: str,
        client_id: str,
        client_host: str = "",
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        protocol_type: str,
        protocols: Sequence[JoinProtocol],
        require_known_member_id: bool,
    ) -> JoinReply:
        return await self._request(
            JoinReply,
            lambda rid, now: self.coordinator.join(
                request_id=rid,
                group_id=group_id,
                member_id=member_id,
                client_id=client_id,
                client_host=client_host,
                session_timeout_ms=session_timeout_ms,
                rebalance_timeout_ms=rebalance_timeout_ms,
                protocol_type=protocol_type,
                protocols=protocols,
                require_known_member_id=require_known_member_id,
                now_ms=now,
            ),
        )

    async def sync(
        self, *, group_id: str, member_id: str, generation_id: int, assignments: dict[str, bytes]
    ) -> SyncReply:
        return await self._request(
            SyncReply,
            lambda rid, now: self.coordinator.sync(
                request_id=rid,
                group_id=group_id,
                member_id=member_id,
                generation_id=generation_id,
                assignments=assignments,
                now_ms=now,
            ),
        )

    async def heartbeat(
        self, *, group_id: str, member_id: str, generation_id: int
    ) -> HeartbeatReply:
        return await self._request(
            HeartbeatReply,
            lambda rid, now: self.coordinator.heartbeat(
                request_id=rid,
                group_id=group_id,
                member_id=member_id,
                generation_id=generation_id,
                now_ms=now,
            ),
        )

    async def leave(self, *, group_id: str, member_ids: Sequence[str]) -> LeaveReply:
        return await self._request(
            LeaveReply,
            lambda rid, now: self.coordinator.leave(
                request_id=rid, group_id=group_id, member_ids=member_ids, now_ms=now
            ),
        )

    async def commit_offsets(
        self,
        *,
        group_id: str,
        member_id: str,
        generation_id: int,
        offsets: Sequence[OffsetCommitEntry],
    ) -> tuple[CommitPartitionResult, ...]:
        """OffsetCommit, answered once durable: one result per entry, in request order."""
        exists = self._partition_exists
        known = [e for e in offsets if exists is None or exists(e.topic, e.partition)]
        results: Iterator[CommitPartitionResult] = iter(())
        if known:
            reply = await self._request(
                CommitReply,
                lambda rid, now: self.coordinator.commit_offsets(
                    request_id=rid,
                    group_id=group_id,
                    member_id=member_id,
                    generation_id=generation_id,
                    offsets=known,
                    now_ms=now,
                ),
            )
            results = iter(reply.partitions)
        merged = []
        for entry in offsets:
            if exists is not None and not exists(entry.topic, entry.partition):
                code: int = GroupErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            else:
                code = next(results).error
            merged.append(
                CommitPartitionResult(topic=entry.topic, partition=entry.partition, error=code)
            )
        return tuple(merged)

    async def fetch_offsets(
        self, *, group_id: str, partitions: Sequence[tuple[str, int]] | None
    ) -> FetchReply:
        """OffsetFetch: committed offsets (-1 where none); ``None`` asks for all."""
        return await self._request(
            FetchReply,
            lambda rid, now: self.coordinator.fetch_offsets(
                request_id=rid, group_id=group_id, partitions=partitions, now_ms=now
            ),
        )

    def describe(self, group_id: str) -> tuple[int, GroupView | None]:
        """DescribeGroups: (error, view); see ``GroupCoordinator.describe_group``."""
        self._take(self.coordinator.tick(self._clock.now_ms()))  # expire what is due
        return self.coordinator.describe_group(group_id)

    def list_groups(self) -> list[GroupView]:
        """ListGroups: every group this driver serves."""
        self._take(self.coordinator.tick(self._clock.now_ms()))
        views = (self.coordinator.describe(g) for g in self.coordinator.group_ids())
        return [view for view in views if view is not None]

    # -- plumbing -----------------------------------------------------------------

    async def _request(self, kind: type[R], call: Callable[[int, int], list[Output]]) -> R:
        request_id = self._next_request
        self._next_request += 1
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiters[request_id] = future
        try:
            outputs = call(request_id, self._clock.now_ms())
        except BaseException:
            del self._waiters[request_id]
            raise
        self._take(outputs)
        reply = await future
        if not isinstance(reply, kind):
            raise AssertionError(f"request {request_id} got a {type(reply).__name__}")
        return reply

    def _take(self, outputs: Iterable[Output]) -> None:
        """Route outputs: replies to their waiters, appends to the storage; then re-arm."""
        self._queue.extend(outputs)
        if self._draining:
            return  # the loop below, further up the stack, takes them
        self._draining = True
        try:
            while self._queue:
                output = self._queue.popleft()
                if isinstance(output, Append):
                    self._append(output)
                else:
                    future = self._waiters.pop(output.request_id, None)
                    if future is not None and not future.done():
                        future.set_result(output)
        finally:
            self._draining = False
        self._arm()

    def _append(self, append: Append) -> None:
        self._in_flight[append.append_id] = append
        self._idle.clear()
        calls = 0

        def done(error: int) -> None:
            nonlocal calls
            calls += 1
            if calls > 1:
                _log.error("append %d reported done twice; ignoring", append.append_id)
                return
            del self._in_flight[append.append_id]
            if not self._in_flight:
                self._idle.set()
            if error:
                _log.warning(
                    "append to __consumer_offsets-%d failed with error %d",
                    append.partition,
                    error,
                )
            now_ms = self._clock.now_ms()
            self._take(
                self.coordinator.on_appended(append_id=append.append_id, error=error, now_ms=now_ms)
            )

        try:
            self._storage.append(append.partition, append.records, done)
        except Exception:  # the contract says never; fail the append rather than hang it
            _log.exception("append to __consumer_offsets-%d raised", append.partition)
            if calls == 0:
                done(GroupErrorCode.KAFKA_STORAGE_ERROR)

    def _arm(self) -> None:
        """Keep one timer, at the coordinator's next deadline."""
        deadline = None if self._closed else self.coordinator.next_deadline()
        if deadline == self._timer_at and (deadline is None or self._timer is not None):
            return
        self._disarm()
        if deadline is not None:
            self._timer_at = deadline
            self._timer = self._clock.call_at(deadline, self._on_timer)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_at = None

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self._take(self.coordinator.tick(self._clock.now_ms()))


def _random_member_id(client_id: str) -> str:
    return f"{client_id}-{uuid.uuid4()}"


def _decodable(records: Iterable[OffsetsRecord], skipped: list[int]) -> Iterator[OffsetsRecord]:
    """``records`` without the ones the coordinator could not decode (their indexes go
    to ``skipped``): one bad record must not cost a partition every other one."""
    for index, record in enumerate(records):
        try:
            key = decode_key(record.key)
            if record.value is not None:
                if isinstance(key, GroupKey):
                    decode_group_value(record.value)
                else:
                    decode_offset_value(record.value)
        except RecordFormatError:
            skipped.append(index)
            continue
        yield record
