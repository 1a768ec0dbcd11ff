"""The asyncio consumer: manual assignment, seek, and poll from partition leaders.

Theory of operation. The consumer keeps a *position* per assigned partition (the
next offset to return); a partition without one is reset by ``auto_offset_reset``
(earliest / latest via ListOffsets, or ``none``: raise). ``poll`` returns buffered
records first; otherwise it sends one Fetch per partition leader (long-polling up
to ``fetch_max_wait_ms``), parses the record batches, skips control batches and the
records before the position that compressed batches carry, and advances the
position past every batch it parsed. Fetches carry the leader epoch from the
metadata; NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH and friends refresh the
metadata and the next round goes to the new leader. OFFSET_OUT_OF_RANGE applies the
reset policy.

Reads change nothing on the broker, so poll's errors are raised with
``definite=True``.

Groups. With ``group_id``, :meth:`Consumer.subscribe` hands the assignment to the
group (the membership machine of :mod:`rift_client.group`, run by a background task
that also heartbeats). Rebalancing is eager: a revocation empties the assignment;
a new assignment starts each partition at the group's committed offset, else at
``auto_offset_reset``. :meth:`commit` / :meth:`commit_async` / :meth:`committed`
work with ``assign`` too (a "simple" consumer commits outside any generation).
Auto-commit is off unless ``enable_auto_commit``; then poll commits the consumed
positions every ``auto_commit_interval_ms``, and revocation commits first.
:meth:`close` leaves the group.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rift_client import protocol
from rift_client._group_driver import GroupDriver
from rift_client._offsets import EARLIEST, LATEST, list_offsets
from rift_client.cluster import Cluster
from rift_client.errors import ClientError, InvalidArgument, for_code
from rift_client.group import Membership, State
from rift_client.protocol import Api
from rift_client.records import decode_batches
from rift_client.types import ConsumerRecord, TopicPartition

__all__ = ["Consumer"]

_RESETS = {"earliest": EARLIEST, "latest": LATEST, "none": None}
_OFFSET_OUT_OF_RANGE = 1


class Consumer:
    def __init__(
        self,
        bootstrap_servers: str | Sequence[str],
        *,
        client_id: str = "rift-consumer",
        auto_offset_reset: str = "earliest",
        fetch_max_wait_ms: float = 500,
        fetch_min_bytes: int = 1,
        fetch_max_bytes: int = 50 * 1024 * 1024,
        max_partition_fetch_bytes: int = 1024 * 1024,
        request_timeout_ms: float = 30000,
        retry_backoff_ms: float = 100,
        isolation_level: str = "read_uncommitted",
        check_crcs: bool = True,
        group_id: str | None = None,
        session_timeout_ms: float = 45000,
        heartbeat_interval_ms: float = 3000,
        rebalance_timeout_ms: float = 300000,
        partition_assignment_strategy: Sequence[str] = ("sticky", "range"),
        enable_auto_commit: bool = False,
        auto_commit_interval_ms: float = 5000,
    ) -> None:
        if auto_offset_reset not in _RESETS:
            raise InvalidArgument("auto_offset_reset must be 'earliest', 'latest' or 'none'")
        if isolation_level not in ("read_uncommitted", "read_committed"):
            raise InvalidArgument("isolation_level is read_uncommitted or read_committed")
        if enable_auto_commit and group_id is None:
            raise InvalidArgument("enable_auto_commit needs a group_id")
        self.auto_offset_reset = auto_offset_reset
        self.fetch_max_wait = fetch_max_wait_ms / 1000
        self.fetch_min_bytes = fetch_min_bytes
        self.fetch_max_bytes = fetch_max_bytes
        self.max_partition_fetch_bytes = max_partition_fetch_bytes
        self.request_timeout = request_timeout_ms / 1000
        self.backoff = retry_backoff_ms / 1000
        self.isolation_level = 1 if isolation_level == "read_committed" else 0
        self.check_crcs = check_crcs
        self.cluster = Cluster(
            bootstrap_servers, client_id=client_id, request_timeout=self.request_timeout
        )
        self._positions: dict[TopicPartition, int | None] = {}
        self._buffer: dict[TopicPartition, deque[ConsumerRecord]] = defaultdict(deque)
        self._started = False
        # Bumped by every assignment change, so answers to older fetches are dropped.
        self._assignment_epoch = 0
        self.group_id = group_id
        self.enable_auto_commit = enable_auto_commit
        self.auto_commit_interval = auto_commit_interval_ms / 1000
        self._next_auto_commit = 0.0
        self._subscribed = False
        self._awaiting_committed: set[TopicPartition] = set()
        # Partitions whose position the group set (from committed offsets) since the
        # last take_restarted().
        self._restarted: set[TopicPartition] = set()
        self._group: GroupDriver | None = None
        if group_id is not None:
            membership = Membership(
                group_id,
                assignors=tuple(partition_assignment_strategy),
                session_timeout=session_timeout_ms / 1000,
                rebalance_timeout=rebalance_timeout_ms / 1000,
                heartbeat_interval=heartbeat_interval_ms / 1000,
                retry_backoff=self.backoff,
            )
            self._group = GroupDriver(
                self.cluster,
                group_id,
                membership=membership,
                request_timeout=self.request_timeout,
                backoff=self.backoff,
            )
            self._group.on_assigned = self._on_assigned
            self._group.on_revoked = self._on_revoked

    async def start(self) -> None:
        if not self._started:
            await self.cluster.refresh([])
            self._started = True

    async def __aenter__(self) -> Consumer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Leave the group (if subscribed; committing first under auto-commit) and
        close every connection."""
        if self._group is not None:
            if self.enable_auto_commit and self._positions:
                with contextlib.suppress(ClientError):
                    await self.commit()
            await self._group.stop(leave=True)
            self._subscribed = False
        await self.cluster.close()

    # --- assignment and positions -----------------------------------------------

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Consume exactly ``partitions`` (replacing the previous assignment)."""
        if self._subscribed:
            raise InvalidArgument("this consumer subscribed; assign() is for manual assignment")
        self._assign(partitions)

    def _assign(self, partitions: Iterable[TopicPartition]) -> None:
        self._assignment_epoch += 1
        wanted = set(partitions)
        self._positions = {tp: self._positions.get(tp) for tp in wanted}
        for tp in list(self._buffer):
            if tp not in wanted:
                del self._buffer[tp]

    def assignment(self) -> frozenset[TopicPartition]:
        return frozenset(self._positions) | frozenset(self._awaiting_committed)

    # --- groups --------------------------------------------------------------

    def subscribe(self, topics: Iterable[str]) -> None:
        """Join the group (``group_id``) for ``topics``; the group assigns partitions.

        Call from a running event loop; the assignment arrives during later polls."""
        names = [topics] if isinstance(topics, str) else list(topics)
        if self._group is None or self._group.membership is None:
            raise InvalidArgument("subscribe() needs a group_id")
        if not names:
            raise InvalidArgument("subscribe to at least one topic (close() leaves the group)")
        if not self._subscribed and self._positions:
            raise InvalidArgument("this consumer has a manual assignment; assign([]) first")
        loop = asyncio.get_running_loop()
        self._group.membership.subscribe(names, loop.time())
        self._subscribed = True
        self._group.start()
        self._group.wake()

    def subscription(self) -> frozenset[str]:
        if self._group is None or self._group.membership is None:
            return frozenset()
        return self._group.membership.topics

    @property
    def generation(self) -> int:
        """The group generation of the current assignment (-1 outside a group)."""
        membership = self._group.membership if self._group is not None else None
        return membership.generation if membership is not None and membership.stable else -1

    @property
    def member_id(self) -> str:
        membership = self._group.membership if self._group is not None else None
        return membership.member_id if membership is not None else ""

    def _driver(self) -> GroupDriver:
        if self._group is None:
            raise InvalidArgument("commits need a group_id")
        return self._group

    def consumed_offsets(self) -> dict[TopicPartition, int]:
        """Per assigned partition with a position: the offset of the next record
        poll returns (what a commit records)."""
        out: dict[TopicPartition, int] = {}
        for tp, position in self._positions.items():
            queue = self._buffer.get(tp)
            if queue:
                out[tp] = queue[0].offset
            elif position is not None:
                out[tp] = position
        return out

    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        """Commit ``offsets`` (default: :meth:`consumed_offsets`) and await the answer.

        Raises a :class:`ClientError`: ``definite=True`` if the commit certainly did not
        happen (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS, ...),
        ``definite=False`` if its answer was lost."""
        chosen = self.consumed_offsets() if offsets is None else dict(offsets)
        await self.start()
        await self._driver().commit({tp: (off, -1) for tp, off in chosen.items()})

    def commit_async(
        self, offsets: Mapping[TopicPartition, int] | None = None
    ) -> asyncio.Task[None]:
        """Start a commit of ``offsets`` taken now; the task ends as :meth:`commit` would."""
        chosen = self.consumed_offsets() if offsets is None else dict(offsets)
        self._driver()
        return asyncio.ensure_future(self.commit(chosen))

    async def committed(
        self, partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, int | None]:
        """The group's committed offsets for ``partitions`` (None: nothing committed)."""
        await self.start()
        return await self._driver().committed(partitions)

    async def _on_assigned(self, partitions: frozenset[TopicPartition]) -> None:
        self._assign([])
        self._awaiting_committed = set(partitions)

    async def _on_revoked(self, partitions: frozenset[TopicPartition]) -> None:
        if self.enable_auto_commit:
            offsets = {tp: o for tp, o in self.consumed_offsets().items() if tp in partitions}
            with contextlib.suppress(ClientError):
                await self._driver().commit(
                    {tp: (o, -1) for tp, o in offsets.items()}, revoking=True
                )
        self._awaiting_committed = set()
        self._assign([])

    async def _group_positions(self, deadline: float) -> None:
        """Turn a fresh group assignment into positions (committed offsets), and wait
        (until ``deadline``) while the group has none for us."""
        group = self._group
        if group is None:
            return
        loop = asyncio.get_running_loop()
        membership = group.membership
        assert membership is not None
        if self.enable_auto_commit and self._positions and loop.time() >= self._next_auto_commit:
            self._next_auto_commit = loop.time() + self.auto_commit_interval
            if membership.stable or not self._subscribed:
                task = self.commit_async()
                task.add_done_callback(_ignore_result)
        if not self._subscribed:
            return
        if membership.state is State.FAILED and membership.error is not None:
            raise membership.error
        group.check()
        if not self._positions and not self._awaiting_committed:
            group.changed.clear()
            remaining = deadline - loop.time()
            if remaining > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await group.changed.wait()
        if self._awaiting_committed:
            epoch = self._assignment_epoch
            pending = set(self._awaiting_committed)
            committed = await group.committed(pending)
            if epoch == self._assignment_epoch and pending == self._awaiting_committed:
                self._awaiting_committed = set()
                self._assign(pending)
                for tp, offset in committed.items():
                    self._positions[tp] = offset
                self._restarted |= pending

    def take_restarted(self) -> frozenset[TopicPartition]:
        """The partitions whose position a group assignment set (at the committed
        offset, else by ``auto_offset_reset``) since the last call. The positions are
        set inside :meth:`poll`, before it collects records: every record a poll
        returns from such a partition comes after its restart."""
        restarted = frozenset(self._restarted)
        self._restarted.clear()
        return restarted

    def _check(self, tp: TopicPartition) -> None:
        if tp not in self._positions:
            raise InvalidArgument(f"{tp} is not assigned")

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """The next poll returns records of ``tp`` from ``offset`` on."""
        self._check(tp)
        if offset < 0:
            raise InvalidArgument("offset must be >= 0")
        self._positions[tp] = offset
        self._buffer.pop(tp, None)

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        await self._seek_to(partitions or tuple(self._positions), EARLIEST)

    async def seek_to_end(self, *partitions: TopicPartition) -> None:
        await self._seek_to(partitions or tuple(self._positions), LATEST)

    async def _seek_to(self, partitions: Sequence[TopicPartition], timestamp: int) -> None:
        for tp in partitions:
            self._check(tp)
        await self._ensure_metadata({tp.topic for tp in partitions})
        offsets = await list_offsets(
            self.cluster,
            partitions,
            timestamp=timestamp,
            deadline=self.request_timeout,
            isolation_level=self.isolation_level,
        )
        for tp, offset in offsets.items():
            self.seek(tp, offset)

    async def position(self, tp: TopicPartition) -> int:
        """The offset of the next record poll returns for ``tp``."""
        self._check(tp)
        if self._buffer.get(tp):
            return self._buffer[tp][0].offset
        await self._reset_unknown()
        position = self._positions[tp]
        assert position is not None
        return position

    async def _ensure_metadata(self, topics: set[str]) -> None:
        missing = {t for t in topics if t not in self.cluster.topics}
        if missing:
            await self.cluster.refresh(missing)

    async def _reset_unknown(self) -> None:
        unknown = [tp for tp, pos in self._positions.items() if pos is None]
        if not unknown:
            return
        timestamp = _RESETS[self.auto_offset_reset]
        if timestamp is None:
            raise for_code(
                _OFFSET_OUT_OF_RANGE,
                f"no position for {unknown} and reset is 'none'",
                definite=True,
            )
        await self._seek_to(unknown, timestamp)

    # --- polling -------------------------------------------------------------

    async def poll(
        self, *, timeout_ms: float = 1000, max_records: int = 500
    ) -> list[ConsumerRecord]:
        """Records from the assigned partitions, in offset order per partition; ``[]``
        if none arrived within ``timeout_ms``."""
        if max_records <= 0:
            raise InvalidArgument("max_records must be positive")
        await self.start()
        try:
            return await self._poll(timeout_ms=timeout_ms, max_records=max_records)
        except ClientError as exc:
            exc.definite = True  # a read changes nothing on the broker
            raise

    async def _poll(self, *, timeout_ms: float, max_records: int) -> list[ConsumerRecord]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_ms / 1000
        while True:
            await self._group_positions(deadline)
            await self._reset_unknown()
            records = self._drain(max_records)
            if records:
                return records
            remaining = deadline - loop.time()
            if remaining <= 0 or not self._positions:
                return []
            await self._fetch_round(max_wait=min(self.fetch_max_wait, remaining))

    def _drain(self, max_records: int) -> list[ConsumerRecord]:
        out: list[ConsumerRecord] = []
        for queue in self._buffer.values():
            while queue and len(out) < max_records:
                out.append(queue.popleft())
        return out

    async def _fetch_round(self, *, max_wait: float) -> None:
        by_leader: dict[int, list[TopicPartition]] = defaultdict(list)
        stale: set[str] = set()
        for tp, position in self._positions.items():
            if position is None or self._buffer.get(tp):
                continue
            info = self.cluster.leader(tp)
            if info is None or info.leader < 0:
                stale.add(tp.topic)
            else:
                by_leader[info.leader].append(tp)
        results = await asyncio.gather(
            *(self._fetch(node, tps, max_wait=max_wait) for node, tps in by_leader.items()),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, ClientError) and result.retriable:
                stale.update(tp.topic for tps in by_leader.values() for tp in tps)
            elif isinstance(result, BaseException):
                raise result
            else:
                stale.update(result)
        if stale:
            with contextlib.suppress(ClientError):
                await self.cluster.refresh(stale)
            await asyncio.sleep(self.backoff)

    async def _fetch(self, node: int, tps: list[TopicPartition], *, max_wait: float) -> set[str]:
        """One Fetch to ``node``; returns topics whose metadata looked stale."""
        requested = {tp: self._positions[tp] for tp in tps}
        conn = await self.cluster.connection(node)
        version = conn.version(Api.FETCH)
        by_topic: dict[str, list[Any]] = defaultdict(list)
        for tp in tps:
            info = self.cluster.leader(tp)
            by_topic[tp.topic].append(
                protocol.make(
                    Api.FETCH,
                    version,
                    "FetchPartition",
                    partition=tp.partition,
                    current_leader_epoch=info.epoch if info is not None else -1,
                    fetch_offset=self._positions[tp],
                    log_start_offset=-1,
                    partition_max_bytes=self.max_partition_fetch_bytes,
                )
            )
        body = protocol.request(
            Api.FETCH,
            version,
            replica_id=-1,
            max_wait=protocol.duration(max_wait),
            min_bytes=self.fetch_min_bytes,
            max_bytes=self.fetch_max_bytes,
            isolation_level=self.isolation_level,
            session_id=0,
            session_epoch=-1,
            topics=tuple(
                protocol.make(Api.FETCH, version, "FetchTopic", topic=t, partitions=tuple(p))
                for t, p in by_topic.items()
            ),
            forgotten_topics_data=(),
            rack_id="",
        )
        response = await conn.send(body, time_limit=self.request_timeout + max_wait)
        top_error = int(getattr(response, "error_code", 0))  # Fetch v7+
        if top_error != 0:
            raise for_code(top_error, "fetch failed", definite=True)
        stale: set[str] = set()
        for topic in response.responses:
            for part in topic.partitions:
                tp = TopicPartition(topic=topic.topic, partition=int(part.partition_index))
                if tp not in self._positions or self._positions[tp] != requested.get(tp):
                    continue  # reassigned, reset or sought while the fetch was out
                code = int(part.error_code)
                if code == _OFFSET_OUT_OF_RANGE:
                    if _RESETS[self.auto_offset_reset] is None:
                        raise for_code(code, f"offset {self._positions[tp]} of {tp}", definite=True)
                    self._positions[tp] = None
                elif code != 0:
                    error = for_code(code, f"fetch {tp}", definite=True)
                    if not error.retriable:
                        raise error
                    stale.add(tp.topic)
                elif part.records:
                    self._take(tp, bytes(part.records))
        return stale

    def _take(self, tp: TopicPartition, data: bytes) -> None:
        position = self._positions[tp]
        assert position is not None
        queue = self._buffer[tp]
        for batch in decode_batches(data, check_crc=self.check_crcs):
            if batch.last_offset < position:
                continue
            if not batch.is_control:
                for record in batch.records:
                    if record.offset >= position:
                        queue.append(
                            ConsumerRecord(
                                topic=tp.topic,
                                partition=tp.partition,
                                offset=record.offset,
                                key=record.key,
                                value=record.value,
                                headers=record.headers,
                                timestamp_ms=record.timestamp_ms,
                                leader_epoch=batch.partition_leader_epoch,
                            )
                        )
            position = batch.last_offset + 1
        self._positions[tp] = position


def _ignore_result(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()  # auto-commit is best effort; the next one retries
