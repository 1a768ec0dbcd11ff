"""The asyncio group driver over a fake storage and a manual clock (no sockets, no sleeps).

Requests are started as tasks and the loop is stepped with ``settle()``; time moves
only through :class:`ManualClock.advance`, so every expiry is deterministic.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from rift_broker.group import (
    GroupConfig,
    JoinProtocol,
    JoinReply,
    OffsetCommitEntry,
    OffsetKey,
    OffsetsRecord,
    OffsetValue,
    decode_key,
    encode_offset,
    partition_for,
)
from rift_broker.group import GroupErrorCode as E
from rift_broker.server.clock import ManualClock
from rift_broker.server.config import BrokerConfig
from rift_broker.server.groups import GroupDriver
from rift_broker.server.offsets_log import LocalOffsetsLog, MemoryOffsetsLog, ensure_offsets_topic
from rift_broker.server.registry import TopicRegistry
from rift_broker.storage import MemoryStorage

T = TypeVar("T")

SESSION = 6_000
NO_DELAY = GroupConfig(initial_rebalance_delay_ms=0)


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


async def settle() -> None:
    """Let every ready task run (the driver never sleeps: a few rounds suffice)."""
    for _ in range(20):
        await asyncio.sleep(0)


class Setup:
    def __init__(
        self,
        *,
        storage: MemoryOffsetsLog | None = None,
        num_partitions: int = 3,
        config: GroupConfig = NO_DELAY,
        partition_exists: Callable[[str, int], bool] | None = None,
        now_ms: int = 1_000_000,
    ) -> None:
        self.storage = storage if storage is not None else MemoryOffsetsLog()
        self.clock = ManualClock(now_ms)
        counter = itertools.count(1)
        self.driver = GroupDriver(
            self.storage,
            num_partitions=num_partitions,
            config=config,
            clock=self.clock,
            partition_exists=partition_exists,
            member_id_factory=lambda client_id: f"{client_id}-{next(counter)}",
        )
        self.driver.load_all()

    def start(self, coro: Awaitable[T]) -> asyncio.Task[T]:
        return asyncio.ensure_future(coro)

    def join(self, member_id: str = "", *, group: str = "g", client: str = "c") -> Any:
        return self.start(
            self.driver.join(
                group_id=group,
                member_id=member_id,
                client_id=client,
                session_timeout_ms=SESSION,
                rebalance_timeout_ms=SESSION,
                protocol_type="consumer",
                protocols=[JoinProtocol(name="range", metadata=member_id.encode())],
                require_known_member_id=True,
            )
        )

    async def member_ids(self, n: int, group: str = "g") -> list[str]:
        ids = []
        for i in range(n):
            reply = await self.join(group=group, client=f"c{i}")
            assert reply.error == E.MEMBER_ID_REQUIRED
            ids.append(reply.member_id)
        return ids

    async def form(self, n: int, group: str = "g") -> tuple[list[str], int]:
        """A Stable group of ``n`` members; each is assigned its id as bytes."""
        ids = await self.member_ids(n, group)
        joins = [self.join(m, group=group) for m in ids]
        await settle()
        replies: list[JoinReply] = [j.result() for j in joins]
        generation = replies[0].generation_id
        leader = replies[0].leader
        syncs = [
            self.start(
                self.driver.sync(
                    group_id=group,
                    member_id=m,
                    generation_id=generation,
                    assignments={x: x.encode() for x in ids} if m == leader else {},
                )
            )
            for m in ids
        ]
        await settle()
        for m, sync in zip(ids, syncs, strict=True):
            assert sync.result().error == E.NONE
            assert sync.result().assignment == m.encode()
        return ids, generation

    async def commit(
        self, offsets: dict[tuple[str, int], int], *, member: str = "", generation: int = -1
    ) -> list[int]:
        results = await self.driver.commit_offsets(
            group_id="g",
            member_id=member,
            generation_id=generation,
            offsets=[
                OffsetCommitEntry(topic=t, partition=p, offset=o) for (t, p), o in offsets.items()
            ],
        )
        return [r.error for r in results]

    async def fetch(self, group: str = "g") -> dict[tuple[str, int], int]:
        reply = await self.driver.fetch_offsets(group_id=group, partitions=None)
        assert reply.error == E.NONE
        return {(f.topic, f.partition): f.offset for f in reply.partitions}


# -- membership through the driver -----------------------------------------------------


def test_a_group_forms_and_the_sync_waits_for_the_durable_assignment() -> None:
    async def scenario() -> None:
        s = Setup(storage=MemoryOffsetsLog(auto_complete=False))
        ids = await s.member_ids(2)
        joins = [s.join(m) for m in ids]
        await settle()
        leader = joins[0].result()
        assert leader.error == E.NONE
        assert leader.generation_id == 1
        assert sorted(m.member_id for m in leader.members) == sorted(ids)
        syncs = [
            s.start(
                s.driver.sync(
                    group_id="g",
                    member_id=m,
                    generation_id=1,
                    assignments={ids[0]: b"a", ids[1]: b"b"} if m == leader.leader else {},
                )
            )
            for m in ids
        ]
        await settle()
        assert not any(sync.done() for sync in syncs)  # the assignment is not durable yet
        (append,) = s.storage.pending
        assert append.partition == partition_for("g", 3)
        assert s.storage.complete() == 1
        await settle()
        assert [sync.result().assignment for sync in syncs] == [b"a", b"b"]

    run(scenario)


def test_a_silent_member_expires_on_the_timer_and_the_rest_rebalance() -> None:
    async def scenario() -> None:
        s = Setup()
        (a, _b), generation = await s.form(2)
        assert s.clock.pending == 1  # one timer: the earliest session deadline
        s.clock.advance(SESSION - 1_000)
        beat = await s.driver.heartbeat(group_id="g", member_id=a, generation_id=generation)
        assert beat.error == E.NONE
        s.clock.advance(1_000)  # b's session ends; a was heard from a second ago
        view = s.driver.coordinator.describe("g")
        assert view is not None
        assert view.state == "PreparingRebalance"
        assert [m.member_id for m in view.members] == [a]
        beat = await s.driver.heartbeat(group_id="g", member_id=a, generation_id=generation)
        assert beat.error == E.REBALANCE_IN_PROGRESS
        rejoin = await s.join(a)
        assert (rejoin.error, rejoin.generation_id, rejoin.leader) == (E.NONE, generation + 1, a)
        assert s.clock.pending == 1

    run(scenario)


def test_the_timer_follows_the_earliest_deadline_and_stops_when_nothing_is_due() -> None:
    async def scenario() -> None:
        s = Setup()
        assert s.clock.pending == 0
        (a,), generation = await s.form(1)
        assert s.clock.next_timer() == s.clock.now_ms() + SESSION
        s.clock.advance(2_000)
        await s.driver.heartbeat(group_id="g", member_id=a, generation_id=generation)
        assert s.clock.next_timer() == s.clock.now_ms() + SESSION
        assert s.clock.pending == 1  # re-armed, not stacked
        leave = await s.driver.leave(group_id="g", member_ids=[a])
        assert leave.members[0].error == E.NONE
        assert s.clock.pending == 0

    run(scenario)


def test_a_cancelled_join_is_answered_to_nobody() -> None:
    async def scenario() -> None:
        s = Setup()
        (a, _b), generation = await s.form(2)
        waiting = s.join(a)  # a rejoins: the join waits for b
        await settle()
        assert not waiting.done()
        waiting.cancel()  # its connection closed
        await settle()
        s.clock.advance(SESSION)  # b never rejoins and expires; the join completes
        await settle()
        view = s.driver.coordinator.describe("g")
        assert view is not None
        assert view.generation == generation + 1
        assert not s.driver.coordinator.waiting_requests

    run(scenario)


# -- offsets ----------------------------------------------------------------------------


def test_a_commit_is_answered_and_visible_only_once_durable() -> None:
    async def scenario() -> None:
        s = Setup(storage=MemoryOffsetsLog(auto_complete=False))
        commit = s.start(s.commit({("t", 0): 5, ("t", 1): 7}))
        await settle()
        assert not commit.done()
        assert await s.fetch() == {}  # not committed yet
        s.storage.complete()
        await settle()
        assert commit.result() == [E.NONE, E.NONE]
        assert await s.fetch() == {("t", 0): 5, ("t", 1): 7}
        (records,) = s.storage.log.values()
        keys = [decode_key(r.key) for r in records if isinstance(decode_key(r.key), OffsetKey)]
        assert [(k.topic, k.partition) for k in keys] == [("t", 0), ("t", 1)]  # type: ignore[union-attr]

    run(scenario)


def test_a_failed_append_fails_the_commit_and_commits_nothing() -> None:
    async def scenario() -> None:
        s = Setup(storage=MemoryOffsetsLog(auto_complete=False))
        commit = s.start(s.commit({("t", 0): 5}))
        await settle()
        s.storage.complete(error=6)  # NOT_LEADER_OR_FOLLOWER: leadership moved
        await settle()
        assert commit.result() == [E.NOT_COORDINATOR]
        assert await s.fetch() == {}

    run(scenario)


def test_commits_to_unknown_partitions_fail_alone_in_request_order() -> None:
    async def scenario() -> None:
        s = Setup(partition_exists=lambda topic, partition: topic == "t" and partition < 2)
        codes = await s.commit({("t", 0): 1, ("nope", 0): 2, ("t", 5): 3, ("t", 1): 4})
        assert codes == [E.NONE, E.UNKNOWN_TOPIC_OR_PARTITION, E.UNKNOWN_TOPIC_OR_PARTITION, E.NONE]
        assert await s.fetch() == {("t", 0): 1, ("t", 1): 4}
        assert await s.commit({("nope", 1): 2}) == [E.UNKNOWN_TOPIC_OR_PARTITION]

    run(scenario)


def test_a_new_driver_on_the_same_log_has_every_offset_and_the_group() -> None:
    async def scenario() -> None:
        first = Setup()
        (a, b), generation = await first.form(2)
        assert await first.commit({("t", 0): 10}, member=a, generation=generation) == [E.NONE]
        assert await first.commit({("t", 0): 12, ("t", 1): 3}, member=b, generation=generation)
        await first.driver.close()

        second = Setup(storage=MemoryOffsetsLog(log=first.storage.log))
        assert await second.fetch() == {("t", 0): 12, ("t", 1): 3}
        view = second.driver.coordinator.describe("g")
        assert view is not None
        assert (view.state, view.generation) == ("Stable", generation)
        beat = await second.driver.heartbeat(group_id="g", member_id=a, generation_id=generation)
        assert beat.error == E.NONE  # the member carries on across the failover

    run(scenario)


def test_a_record_that_does_not_decode_is_skipped_not_fatal() -> None:
    async def scenario() -> None:
        p = partition_for("g", 3)
        good = encode_offset(OffsetKey(group_id="g", topic="t", partition=0), OffsetValue(offset=4))
        log = {p: [OffsetsRecord(key=b"\x00\x09junk", value=b"?"), good]}
        s = Setup(storage=MemoryOffsetsLog(log=log))
        assert await s.fetch() == {("t", 0): 4}

    run(scenario)


# -- leadership and shutdown ------------------------------------------------------------


def test_unload_answers_waiting_requests_and_sends_clients_elsewhere() -> None:
    async def scenario() -> None:
        s = Setup()
        (a, _b), _ = await s.form(2)
        waiting = s.join(a)
        await settle()
        assert not waiting.done()
        s.driver.unload(partition_for("g", 3))
        await settle()
        assert waiting.result().error == E.NOT_COORDINATOR
        assert not s.driver.is_coordinator("g")
        assert await s.commit({("t", 0): 1}) == [E.NOT_COORDINATOR]
        s.driver.load(partition_for("g", 3))
        assert s.driver.is_coordinator("g")

    run(scenario)


def test_close_lets_appends_in_flight_finish_then_answers_the_rest() -> None:
    async def scenario() -> None:
        s = Setup()
        (a, b), generation = await s.form(2)
        s.storage.auto_complete = False
        waiting = s.join(a)  # the leader rejoins: the join waits for b
        commit = s.start(s.commit({("t", 0): 9}, member=b, generation=generation))
        await settle()
        closing = s.start(s.driver.close())
        await settle()
        assert not closing.done()  # the commit's append is in flight
        s.storage.complete()
        await settle()
        assert closing.done()
        assert commit.result() == [E.NONE]
        assert waiting.result().error == E.NOT_COORDINATOR
        assert s.driver.loaded == frozenset()
        assert s.clock.pending == 0
        assert (await s.driver.heartbeat(group_id="g", member_id=b, generation_id=1)).error == (
            E.NOT_COORDINATOR
        )

    run(scenario)


def test_an_append_completed_inside_append_is_handled_in_order() -> None:
    async def scenario() -> None:
        s = Setup()  # MemoryOffsetsLog completes before append returns
        assert await s.commit({("t", 0): 1}) == [E.NONE]
        assert await s.commit({("t", 0): 2}) == [E.NONE]
        assert await s.fetch() == {("t", 0): 2}
        assert s.storage.appends == 2

    run(scenario)


def test_describe_and_list() -> None:
    async def scenario() -> None:
        s = Setup()
        (a, b), _ = await s.form(2)
        assert await s.commit({("t", 0): 1}) == [E.UNKNOWN_MEMBER_ID]  # not a member
        code, view = s.driver.describe("g")
        assert code == E.NONE
        assert view is not None
        assert view.state == "Stable"
        assert {m.member_id: m.metadata for m in view.members} == {a: a.encode(), b: b.encode()}
        assert s.driver.describe("nobody") == (E.NONE, None)
        assert s.driver.describe("")[0] == E.INVALID_GROUP_ID
        assert [v.group_id for v in s.driver.list_groups()] == ["g"]

    run(scenario)


# -- the single-node storage -----------------------------------------------------------


def test_local_offsets_log_round_trip_and_topic_settings(tmp_path: Path) -> None:
    async def scenario() -> None:
        config = BrokerConfig(data_dir=tmp_path, durability="fsync")
        registry = TopicRegistry(config, storage=MemoryStorage())
        registry.load(now_ms=0)
        topic = ensure_offsets_topic(registry, partitions=4, now_ms=0)
        assert topic.spec.partitions == 4
        assert topic.spec.configs == {"retention.ms": "-1", "retention.bytes": "-1"}
        assert ensure_offsets_topic(registry, partitions=9, now_ms=0) is topic  # kept as is
        storage = LocalOffsetsLog(topic, clock=lambda: 123)
        results: list[int] = []
        first = [OffsetsRecord(key=b"k1", value=b"v1"), OffsetsRecord(key=b"k2", value=None)]
        storage.append(2, first, results.append)
        storage.append(2, [OffsetsRecord(key=b"k1", value=b"v3")], results.append)
        storage.append(7, first, results.append)
        assert results == [3]  # no such partition: failed at once
        await storage.close()
        assert results == [3, 0, 0]
        assert storage.read(2) == [*first, OffsetsRecord(key=b"k1", value=b"v3")]
        assert storage.read(0) == []
        assert topic.partitions[2].high_watermark == 3
        for partition in registry.partitions():
            await partition.close()

    run(scenario)


def test_loading_a_loaded_partition_is_refused() -> None:
    with pytest.raises(ValueError, match="already loaded"):
        Setup().driver.load(0)
