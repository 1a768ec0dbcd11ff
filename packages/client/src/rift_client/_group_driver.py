"""The asyncio driver of :class:`rift_client.group.Membership`, and offset commits.

One background task per subscribed consumer runs the membership machine: it finds
the coordinator, sends what the machine asks (JoinGroup, SyncGroup, heartbeats),
feeds the answers back, and hands the machine's ``Assigned`` / ``Revoked`` events to
the consumer through callbacks. Commits and committed-offset reads go to the same
coordinator from the caller's task.

Commit outcomes follow :mod:`rift_client.outcome`: an answer with error 0 is ok; a
rejection (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS,
OFFSET_METADATA_TOO_LARGE, ...) is a definite failure; a commit whose answer was
lost is unknown. Coordinator errors are retried (after finding the coordinator
again) until the request timeout, and the verdict combines every attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from rift_client import _group_wire as wire
from rift_client.cluster import Cluster
from rift_client.connection import Connection
from rift_client.errors import ClientError, ClientTimeout, InvalidArgument, for_code
from rift_client.group import (
    Assigned,
    HeartbeatRequest,
    JoinRequest,
    JoinResult,
    LeaveRequest,
    Membership,
    Revoked,
    State,
    SyncRequest,
    SyncResult,
)
from rift_client.outcome import Action, RetryPolicy
from rift_client.protocol import Api
from rift_client.types import TopicPartition

__all__ = ["GroupDriver"]

OnAssigned = Callable[[frozenset[TopicPartition]], Awaitable[None]]
OnRevoked = Callable[[frozenset[TopicPartition]], Awaitable[None]]

_RETRY_COMMIT = frozenset({14, 15, 16})  # load in progress, not available, not coordinator


class GroupDriver:
    def __init__(
        self,
        cluster: Cluster,
        group_id: str,
        *,
        membership: Membership | None,
        request_timeout: float,
        backoff: float,
    ) -> None:
        self.cluster = cluster
        self.group_id = group_id
        self.membership = membership
        self.request_timeout = request_timeout
        self.backoff = backoff
        self.coordinator: int | None = None
        self._address: tuple[str, int] | None = None
        self._conn: Connection | None = None
        self._connecting = asyncio.Lock()
        self.on_assigned: OnAssigned | None = None
        self.on_revoked: OnRevoked | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.changed = asyncio.Event()  # set after every assignment change

    # --- the coordinator -------------------------------------------------------------

    async def coordinator_connection(self) -> Connection:
        """Our own connection to the coordinator, like the Java client's: a JoinGroup
        may be held for a whole rebalance, and fetches must not queue behind it."""
        async with self._connecting:
            conn = self._conn
            if conn is not None and not conn.closed:
                return conn
            if self._address is None:
                await self.find_coordinator()
            assert self._address is not None
            host, port = self._address
            conn = await Connection.open(
                host, port, client_id=self.cluster.client_id, time_limit=self.request_timeout
            )
            self._conn = conn
            return conn

    async def find_coordinator(self) -> None:
        conn = await self.cluster.any_connection()
        version = conn.version(Api.FIND_COORDINATOR)
        response = await conn.send(
            wire.find_coordinator(version, self.group_id), time_limit=self.request_timeout
        )
        code = int(response.error_code)
        if code != 0:
            raise for_code(code, f"find coordinator of group {self.group_id!r}", definite=True)
        address = (str(response.host), int(response.port))
        if address != self._address:
            await self._drop_connection()
        self.coordinator, self._address = int(response.node_id), address

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    async def _forget_coordinator(self) -> None:
        self.coordinator = None
        await self._drop_connection()
        self._address = None

    # --- the background task -----------------------------------------------------------

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"rift-group-{self.group_id}")

    def check(self) -> None:
        """Re-raise what killed the background task (a bug: it handles ClientErrors)."""
        task = self._task
        if task is not None and task.done() and not task.cancelled():
            error = task.exception()
            if error is not None:
                raise error

    def wake(self) -> None:
        self._wake.set()

    async def stop(self, *, leave: bool) -> None:
        """Cancel the background task, send LeaveGroup if ``leave`` and we are a member
        (bounded, best effort), and close the coordinator connection."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        membership = self.membership
        if membership is not None and membership.state is not State.LEFT:
            request = membership.leave()
            await self._deliver_events()
            if leave and request is not None and self._address is not None:
                with contextlib.suppress(ClientError, OSError):
                    conn = await self.coordinator_connection()
                    # v3 only adds batched and static (group.instance.id) members, which
                    # we do not use; librdkafka's mock advertises v3 but never answers it.
                    version = min(conn.version(Api.LEAVE_GROUP), 2)
                    body = wire.leave_group(
                        version, group_id=self.group_id, member_id=request.member_id
                    )
                    await conn.send(body, time_limit=min(self.request_timeout, 5.0))
        await self._drop_connection()

    async def _run(self) -> None:
        membership = self.membership
        assert membership is not None
        loop = asyncio.get_running_loop()
        while membership.state not in (State.LEFT, State.FAILED):
            await self._deliver_events()
            now = loop.time()
            try:
                if membership.coordinator_needed:
                    await self.find_coordinator()
                    membership.coordinator_found()
                    continue
                if membership.state is State.ASSIGNING:
                    topics = membership.topics_to_assign()
                    await self.cluster.refresh(topics)
                    counts = {
                        t: len(info.partitions)
                        for t in topics
                        if (info := self.cluster.topics.get(t)) is not None
                    }
                    membership.assign(counts, loop.time())
                    continue
            except ClientError:
                await asyncio.sleep(self.backoff)
                continue
            request = membership.next_request(now)
            if request is None:
                deadline = membership.next_deadline(now)
                self._wake.clear()
                timeout = None if deadline is None else max(0.0, deadline - now)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._wake.wait()
                continue
            await self._send(membership, request)
        await self._deliver_events()
        self.changed.set()

    async def _send(self, membership: Membership, request: Any) -> None:
        loop = asyncio.get_running_loop()
        try:
            conn = await self.coordinator_connection()
            if isinstance(request, JoinRequest):
                version = conn.version(Api.JOIN_GROUP)
                body = wire.join_group(
                    version,
                    group_id=self.group_id,
                    member_id=request.member_id,
                    session_timeout=membership.session_timeout,
                    rebalance_timeout=membership.rebalance_timeout,
                    protocols=request.protocols,
                )
                # The coordinator holds a JoinGroup until every member rejoined.
                limit = membership.rebalance_timeout + self.request_timeout
                r = await conn.send(body, time_limit=limit)
                membership.on_join(
                    JoinResult(
                        error=int(r.error_code),
                        generation=int(r.generation_id),
                        protocol=r.protocol_name or "",
                        leader=r.leader,
                        member_id=r.member_id,
                        members=tuple((m.member_id, bytes(m.metadata)) for m in r.members),
                    ),
                    loop.time(),
                )
            elif isinstance(request, SyncRequest):
                version = conn.version(Api.SYNC_GROUP)
                body = wire.sync_group(
                    version,
                    group_id=self.group_id,
                    generation=request.generation,
                    member_id=request.member_id,
                    assignments=request.assignments,
                )
                limit = membership.rebalance_timeout + self.request_timeout
                r = await conn.send(body, time_limit=limit)
                membership.on_sync(
                    SyncResult(error=int(r.error_code), assignment=bytes(r.assignment)),
                    loop.time(),
                )
            elif isinstance(request, HeartbeatRequest):
                version = conn.version(Api.HEARTBEAT)
                body = wire.heartbeat(
                    version,
                    group_id=self.group_id,
                    generation=request.generation,
                    member_id=request.member_id,
                )
                r = await conn.send(body, time_limit=self.request_timeout)
                membership.on_heartbeat(int(r.error_code), loop.time())
            elif isinstance(request, LeaveRequest):  # pragma: no cover - leave() sends it
                pass
        except ClientError as exc:
            membership.on_failure(exc, loop.time())
            await self._forget_coordinator()

    async def _deliver_events(self) -> None:
        if self.membership is None:
            return
        for event in self.membership.take_events():
            if isinstance(event, Revoked) and self.on_revoked is not None:
                await self.on_revoked(event.partitions)
            elif isinstance(event, Assigned) and self.on_assigned is not None:
                await self.on_assigned(event.partitions)
            self.changed.set()

    # --- offsets -----------------------------------------------------------------------

    async def commit(
        self, offsets: Mapping[TopicPartition, tuple[int, int]], *, revoking: bool = False
    ) -> None:
        """Commit ``offsets`` (tp -> (offset, leader epoch)); see the module docstring.

        ``revoking``: the commit of an eager revocation, sent with the generation that
        is ending (Kafka accepts it while the group prepares the rebalance)."""
        if not offsets:
            return
        for tp, (offset, _) in offsets.items():
            if offset < 0:
                raise InvalidArgument(f"cannot commit offset {offset} for {tp}")
        membership = self.membership
        if membership is not None and membership.topics:
            if not membership.stable and not revoking:
                raise for_code(27, "the group is rebalancing; commit after the next poll")
            generation, member_id = membership.generation, membership.member_id
        else:  # manual assignment: a "simple" consumer commits outside any generation
            generation, member_id = -1, ""
        policy = RetryPolicy(backoff=self.backoff, backoff_max=1.0, deadline=self.request_timeout)
        loop = asyncio.get_running_loop()
        started, attempts, maybe_applied = loop.time(), 0, False
        while True:
            attempts += 1
            try:
                conn = await self.coordinator_connection()
                body = wire.offset_commit(
                    conn.version(Api.OFFSET_COMMIT),
                    group_id=self.group_id,
                    generation=generation,
                    member_id=member_id,
                    offsets=offsets,
                )
                response = await conn.send(body, time_limit=self.request_timeout)
                errors = {tp: c for tp, c in wire.commit_errors(response).items() if c != 0}
                if not errors:
                    return
                tp, code = min(errors.items())
                if membership is not None:
                    membership.on_commit_error(code, loop.time())
                    self.wake()
                error: ClientError = for_code(code, f"commit {tp} for group {self.group_id!r}")
                if code in _RETRY_COMMIT:
                    await self._forget_coordinator()
                    if code != 14 and membership is not None:
                        membership.coordinator_needed = True
            except ClientError as exc:
                error = exc
                if exc.invalid_metadata or not exc.definite:
                    await self._forget_coordinator()
            decision = policy.decide(
                error,
                attempts=attempts,
                started_at=started,
                maybe_applied=maybe_applied,
                now=loop.time(),
            )
            maybe_applied = maybe_applied or not error.definite
            if decision.action is Action.FAIL:
                error.definite = decision.definite
                raise error
            await asyncio.sleep(max(0.0, decision.retry_at - loop.time()))

    async def committed(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int | None]:
        """The committed offsets (None where the group has none). Reads: definite errors."""
        wanted = sorted(set(tps))
        if not wanted:
            return {}
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.request_timeout
        while True:
            try:
                conn = await self.coordinator_connection()
                body = wire.offset_fetch(
                    conn.version(Api.OFFSET_FETCH), group_id=self.group_id, tps=wanted
                )
                response = await conn.send(body, time_limit=self.request_timeout)
                top, parts = wire.fetched_offsets(response)
                codes = [top] + [code for code, _, _ in parts.values()]
                bad = next((c for c in codes if c != 0), 0)
                if bad == 0:
                    return {
                        tp: (parts[tp][1] if tp in parts and parts[tp][1] >= 0 else None)
                        for tp in wanted
                    }
                error: ClientError = for_code(bad, f"committed offsets of {self.group_id!r}")
                if bad not in _RETRY_COMMIT:
                    raise error
                await self._forget_coordinator()
            except ClientError as exc:
                if not exc.retriable:
                    exc.definite = True
                    raise
                error = exc
                await self._forget_coordinator()
            if loop.time() + self.backoff >= give_up:
                raise ClientTimeout(f"committed offsets: {error}", definite=True)
            await asyncio.sleep(self.backoff)
