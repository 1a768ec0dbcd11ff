"""Consumer groups of our client against librdkafka's in-process mock cluster.

The mock auto-creates topics with 4 partitions and has no CreateTopics, so the
fixture builds its own mock cluster through librdkafka's C API (ctypes on the
library confluent-kafka ships): ``rd_kafka_mock_cluster_new`` and
``rd_kafka_mock_topic_create`` give a 3-broker cluster with a 6-partition topic.
Every wait is bounded; every address is loopback.
"""

from __future__ import annotations

import asyncio
import ctypes
import glob
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from rift_client import Consumer, Producer, TopicPartition, errors, sync

confluent_kafka = pytest.importorskip("confluent_kafka")

pytestmark = pytest.mark.integration


@dataclass
class Mock:
    bootstrap: str
    lib: Any
    cluster: int

    def create_topic(self, name: str, partitions: int) -> None:
        assert self.lib.rd_kafka_mock_topic_create(self.cluster, name.encode(), partitions, 3) == 0


def _librdkafka() -> Any:
    here = os.path.dirname(confluent_kafka.__file__)
    found = glob.glob(os.path.join(here, "..", "confluent_kafka.libs", "librdkafka*.so*"))
    if not found:
        pytest.skip("librdkafka shared library not found next to confluent_kafka")
    lib = ctypes.CDLL(found[0])
    lib.rd_kafka_conf_new.restype = ctypes.c_void_p
    lib.rd_kafka_new.restype = ctypes.c_void_p
    lib.rd_kafka_new.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.rd_kafka_destroy.argtypes = [ctypes.c_void_p]
    lib.rd_kafka_mock_cluster_new.restype = ctypes.c_void_p
    lib.rd_kafka_mock_cluster_new.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.rd_kafka_mock_cluster_destroy.argtypes = [ctypes.c_void_p]
    lib.rd_kafka_mock_cluster_bootstraps.restype = ctypes.c_char_p
    lib.rd_kafka_mock_cluster_bootstraps.argtypes = [ctypes.c_void_p]
    lib.rd_kafka_mock_topic_create.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_int,
    ]
    return lib


@pytest.fixture
def mock() -> Iterator[Mock]:
    lib = _librdkafka()
    err = ctypes.create_string_buffer(512)
    rk = lib.rd_kafka_new(0, lib.rd_kafka_conf_new(), err, 512)  # 0: producer
    assert rk, err.value
    cluster = lib.rd_kafka_mock_cluster_new(rk, 3)
    bootstrap = lib.rd_kafka_mock_cluster_bootstraps(cluster).decode()
    assert all(h.startswith("127.0.0.1:") for h in bootstrap.split(","))
    yield Mock(bootstrap=bootstrap, lib=lib, cluster=cluster)
    lib.rd_kafka_mock_cluster_destroy(cluster)
    lib.rd_kafka_destroy(rk)


FAST = {
    "session_timeout_ms": 3000,
    "heartbeat_interval_ms": 300,
    "rebalance_timeout_ms": 3000,
    "fetch_max_wait_ms": 100,
    "request_timeout_ms": 5000,
}


async def produce(bootstrap: str, topic: str, n: int, start: int = 0) -> None:
    async with Producer(bootstrap, acks="all") as producer:
        futures = [
            await producer.enqueue(topic, b"v%d" % i, partition=i % 6)
            for i in range(start, start + n)
        ]
        reports = await asyncio.gather(*futures)
    assert all(r.ok for r in reports)


async def wait_balanced(consumers: list[Consumer], total: int, *, seconds: float = 20) -> None:
    """Poll everyone until the assignments are disjoint, cover ``total`` partitions,
    and each member is stable."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + seconds
    while loop.time() < give_up:
        await asyncio.gather(*(c.poll(timeout_ms=100) for c in consumers))
        sets = [c.assignment() for c in consumers]
        covered = sum(len(s) for s in sets) == total and len(frozenset().union(*sets)) == total
        gens = {c.generation for c in consumers}
        if covered and len(gens) == 1 and min(gens) >= 0:
            return
    raise AssertionError(f"no balanced assignment: {[sorted(c.assignment()) for c in consumers]}")


async def drain(
    consumers: list[Consumer], want: int, got: list[Any], *, seconds: float = 20
) -> None:
    """Poll and commit after every poll until ``want`` records arrived."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + seconds

    async def one(c: Consumer) -> None:
        records = await c.poll(timeout_ms=200)
        got.extend(records)
        if records:
            await c.commit()

    while len(got) < want and loop.time() < give_up:
        await asyncio.gather(*(one(c) for c in consumers))


def test_three_members_split_six_partitions_and_consume_exactly_once(mock: Mock) -> None:
    mock.create_topic("g6", 6)

    async def main() -> None:
        consumers = [Consumer(mock.bootstrap, group_id="g", **FAST) for _ in range(3)]  # type: ignore[arg-type]
        try:
            for c in consumers:
                await c.start()
                c.subscribe(["g6"])
            await wait_balanced(consumers, 6)
            assert sorted(len(c.assignment()) for c in consumers) == [2, 2, 2]
            await produce(mock.bootstrap, "g6", 600)
            got: list[Any] = []
            await drain(consumers, 600, got)
            values = Counter(r.value for r in got)
            assert len(values) == 600
            assert set(values.values()) == {1}
            committed = await consumers[0].committed(
                [TopicPartition(topic="g6", partition=p) for p in range(6)]
            )
            assert committed == {TopicPartition(topic="g6", partition=p): 100 for p in range(6)}
        finally:
            for c in consumers:
                await c.close()

    asyncio.run(main())


def test_leaving_member_hands_over_from_committed_offsets(mock: Mock) -> None:
    mock.create_topic("leave6", 6)

    async def main() -> None:
        consumers = [Consumer(mock.bootstrap, group_id="gl", **FAST) for _ in range(3)]  # type: ignore[arg-type]
        try:
            for c in consumers:
                c.subscribe(["leave6"])
            await wait_balanced(consumers, 6)
            await produce(mock.bootstrap, "leave6", 300)
            got: list[Any] = []
            await drain(consumers, 300, got)
            assert len(got) == 300
            leaver = consumers.pop()
            before = {tp: set(c.assignment()) for tp, c in enumerate(consumers)}
            await leaver.close()  # LeaveGroup: the rest rebalance at once
            await wait_balanced(consumers, 6)
            assert sorted(len(c.assignment()) for c in consumers) == [3, 3]
            for i, c in enumerate(consumers):  # sticky: the survivors kept theirs
                assert before[i] <= c.assignment()
            await produce(mock.bootstrap, "leave6", 300, start=300)
            more: list[Any] = []
            await drain(consumers, 300, more)
            values = Counter(r.value for r in got + more)
            assert len(values) == 600
            assert set(values.values()) == {1}
        finally:
            for c in consumers:
                await c.close()

    asyncio.run(main())


def test_member_that_stops_heartbeating_is_expired(mock: Mock) -> None:
    mock.create_topic("crash6", 6)

    async def main() -> None:
        consumers = [Consumer(mock.bootstrap, group_id="gc", **FAST) for _ in range(3)]  # type: ignore[arg-type]
        crashed = consumers.pop()
        try:
            for c in [*consumers, crashed]:
                c.subscribe(["crash6"])
            await wait_balanced([*consumers, crashed], 6)
            await produce(mock.bootstrap, "crash6", 300)
            got: list[Any] = []
            await drain([*consumers, crashed], 300, got)
            assert len(got) == 300
            # Crash: stop its background task and drop its sockets, no LeaveGroup.
            assert crashed._group is not None
            task = crashed._group._task
            assert task is not None
            task.cancel()
            await crashed.cluster.close()
            await crashed._group._drop_connection()
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            await wait_balanced(consumers, 6, seconds=15)
            # Expired by the session timeout (3 s), not before some heartbeat lapses.
            assert loop.time() - t0 < 3 + 8
            assert sorted(len(c.assignment()) for c in consumers) == [3, 3]
            await produce(mock.bootstrap, "crash6", 300, start=300)
            more: list[Any] = []
            await drain(consumers, 300, more)
            values = Counter(r.value for r in got + more)
            assert len(values) == 600
            assert set(values.values()) == {1}
        finally:
            for c in consumers:
                await c.close()

    asyncio.run(main())


def test_commit_outcomes_and_manual_assignment_commits(mock: Mock) -> None:
    mock.create_topic("co6", 6)

    async def main() -> None:
        tp = TopicPartition(topic="co6", partition=0)
        async with Producer(mock.bootstrap) as producer:
            for i in range(20):
                assert (await producer.send("co6", b"%d" % i, partition=0)).ok
        async with Consumer(mock.bootstrap, group_id="manual", **FAST) as c:  # type: ignore[arg-type]
            c.assign([tp])
            assert await c.committed([tp]) == {tp: None}
            await c.commit({tp: 7})
            assert await c.committed([tp]) == {tp: 7}
            await c.commit_async({tp: 9})
            assert await c.committed([tp]) == {tp: 9}
            with pytest.raises(errors.InvalidArgument):
                c.subscribe(["co6"])
        async with Consumer(mock.bootstrap, group_id="manual", **FAST) as c:  # type: ignore[arg-type]
            c.subscribe(["co6"])
            seen: list[Any] = []
            for _ in range(100):
                seen += [r for r in await c.poll(timeout_ms=100) if r.partition == 0]
                if seen:
                    break
            # a new assignment starts from the committed offset (9), not earliest
            assert seen[0].offset == 9
            assert c.assignment() == {TopicPartition(topic="co6", partition=p) for p in range(6)}
            # a commit from a stale generation is a definite failure
            membership = c._group.membership  # type: ignore[union-attr]
            assert membership is not None
            membership.generation += 5
            with pytest.raises(errors.KafkaError) as caught:
                await c.commit({tp: 10})
            # ILLEGAL_GENERATION, or REBALANCE_IN_PROGRESS if a heartbeat saw it first
            assert caught.value.code in (22, 27)
            assert caught.value.definite
            assert await c.committed([tp]) == {tp: 9}
        with pytest.raises(errors.InvalidArgument):
            Consumer(mock.bootstrap).subscribe(["co6"])

    asyncio.run(main())


def test_sync_facade_subscribe_commit_committed(mock: Mock) -> None:
    mock.create_topic("sy6", 6)
    asyncio.run(produce(mock.bootstrap, "sy6", 60))
    with sync.Consumer(mock.bootstrap, group_id="gs", **FAST) as c:
        c.subscribe(["sy6"])
        got: list[Any] = []
        for _ in range(100):
            got += c.poll(timeout_ms=200)
            if len(got) >= 60:
                break
        assert len(got) == 60
        c.commit()
        tps = [TopicPartition(topic="sy6", partition=p) for p in range(6)]
        assert c.committed(tps) == {tp: 10 for tp in tps}
        assert c.assignment() == frozenset(tps)


def test_auto_commit_commits_while_polling_and_on_close(mock: Mock) -> None:
    mock.create_topic("ac6", 6)

    async def main() -> None:
        await produce(mock.bootstrap, "ac6", 120)
        tps = [TopicPartition(topic="ac6", partition=p) for p in range(6)]
        async with Consumer(
            mock.bootstrap,
            group_id="gac",
            enable_auto_commit=True,
            auto_commit_interval_ms=100,
            **FAST,  # type: ignore[arg-type]
        ) as c:
            c.subscribe(["ac6"])
            got: list[Any] = []
            for _ in range(100):
                got += await c.poll(timeout_ms=100)
                if len(got) >= 120:
                    break
            assert len(got) == 120
        async with Consumer(mock.bootstrap, group_id="gac", **FAST) as check:  # type: ignore[arg-type]
            assert await check.committed(tps) == {tp: 20 for tp in tps}

    asyncio.run(main())


def test_auto_commit_is_off_by_default(mock: Mock) -> None:
    mock.create_topic("off6", 6)

    async def main() -> None:
        await produce(mock.bootstrap, "off6", 60)
        tps = [TopicPartition(topic="off6", partition=p) for p in range(6)]
        async with Consumer(mock.bootstrap, group_id="goff", **FAST) as c:  # type: ignore[arg-type]
            c.subscribe(["off6"])
            got: list[Any] = []
            for _ in range(100):
                got += await c.poll(timeout_ms=100)
                if len(got) >= 60:
                    break
            assert len(got) == 60
        async with Consumer(mock.bootstrap, group_id="goff", **FAST) as check:  # type: ignore[arg-type]
            assert await check.committed(tps) == {tp: None for tp in tps}

    asyncio.run(main())
