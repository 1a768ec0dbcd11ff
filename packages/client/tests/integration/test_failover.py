"""Leader changes and unknown outcomes, against the scripted cluster."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from rift_client import Admin, Consumer, Producer, TopicPartition, errors

from .scripted_broker import NEWEST, OLDEST, Cluster

pytestmark = pytest.mark.integration

TP = TopicPartition(topic="t", partition=0)


def run(scenario: Callable[[Cluster], Awaitable[None]], **settings: object) -> Cluster:
    cluster = Cluster(**settings)  # type: ignore[arg-type]

    async def main() -> None:
        servers = await cluster.start()
        try:
            await asyncio.wait_for(scenario(cluster), 30)
        finally:
            for server in servers:
                server.close()

    asyncio.run(main())
    return cluster


def producer(cluster: Cluster, **settings: object) -> Producer:
    base: dict[str, object] = {"retry_backoff_ms": 10, "linger_ms": 1}
    base.update(settings)
    return Producer(cluster.bootstrap, **base)  # type: ignore[arg-type]


def test_not_leader_moves_to_the_new_leader() -> None:
    async def scenario(cluster: Cluster) -> None:
        async with producer(cluster) as p:
            assert (await p.send("t", b"a")).ok
            cluster.move_leader(2)
            report = await p.send("t", b"b")
        assert report.status == "ok"
        assert report.offset == 1

    cluster = run(scenario)
    assert cluster.produce_calls == [1, 1, 2]
    assert cluster.records() == 2


def test_dropped_connection_after_append_is_retried_without_duplicate() -> None:
    async def scenario(cluster: Cluster) -> None:
        cluster.drop_after_append = 1
        async with producer(cluster) as p:
            report = await p.send("t", b"once")
        # the retry carried the same sequence: the broker answered the original offset
        assert report.status == "ok"
        assert report.offset == 0

    cluster = run(scenario)
    assert cluster.records() == 1
    assert len(cluster.produce_calls) == 2


def test_dropped_connection_then_leader_change_without_idempotence_duplicates() -> None:
    # Documented behaviour, not a wish: without idempotence a retry may duplicate.
    async def scenario(cluster: Cluster) -> None:
        cluster.drop_after_append = 1
        async with producer(cluster, idempotent=False, acks=1) as p:
            report = await p.send("t", b"maybe-twice")
        assert report.ok

    cluster = run(scenario)
    assert cluster.records() == 2


def test_timeout_is_unknown() -> None:
    async def scenario(cluster: Cluster) -> None:
        cluster.hang_produce = 100
        async with producer(cluster, request_timeout_ms=200, delivery_timeout_ms=600) as p:
            report = await p.send("t", b"lost?")
            assert report.status == "info"
            assert not report.definite
            assert isinstance(report.error, (errors.ClientTimeout, errors.ConnectionLost))
            await p.close(flush=False)

    run(scenario)


def test_rejected_before_append_is_a_definite_failure_and_the_producer_recovers() -> None:
    async def scenario(cluster: Cluster) -> None:
        cluster.produce_errors = [10]  # MESSAGE_TOO_LARGE
        async with producer(cluster) as p:
            first_pid = p.producer_id
            report = await p.send("t", b"too big")
            assert report.status == "fail"
            assert isinstance(report.error, errors.KafkaError)
            assert report.error.code == 10
            again = await p.send("t", b"fine")
            assert again.ok
            assert again.offset == 0
            assert p.producer_id != first_pid  # sequences restarted under a new id

    run(scenario)


def test_unknown_then_definite_is_still_unknown() -> None:
    async def scenario(cluster: Cluster) -> None:
        # appended, connection dropped; then every retry is refused before the append
        cluster.drop_after_append = 1
        cluster.produce_errors = [19] * 1000  # NOT_ENOUGH_REPLICAS
        async with producer(cluster, delivery_timeout_ms=300, request_timeout_ms=300) as p:
            report = await p.send("t", b"x")
            assert report.status == "info", report
            assert isinstance(report.error, errors.KafkaError)
            assert report.error.code == 19

    cluster = run(scenario)
    assert cluster.records() == 1


def test_consumer_follows_the_leader_after_fenced_epoch() -> None:
    async def scenario(cluster: Cluster) -> None:
        async with producer(cluster) as p:
            for i in range(3):
                assert (await p.send("t", b"%d" % i)).ok
        async with Consumer(cluster.bootstrap, retry_backoff_ms=10, fetch_max_wait_ms=50) as c:
            c.assign([TP])
            got = await c.poll(timeout_ms=2000)
            assert [r.value for r in got] == [b"0", b"1", b"2"]
            cluster.move_leader(3)
            async with producer(cluster) as p:
                assert (await p.send("t", b"3")).ok
            got = []
            for _ in range(20):
                got += await c.poll(timeout_ms=200)
                if got:
                    break
            assert [(r.offset, r.value, r.leader_epoch) for r in got] == [(3, b"3", 1)]
        assert cluster.fetch_calls[-1] == 3

    run(scenario)


@pytest.mark.parametrize("versions", [OLDEST, NEWEST], ids=["oldest", "newest"])
def test_every_negotiated_version_works(versions: dict) -> None:
    async def scenario(cluster: Cluster) -> None:
        async with producer(cluster) as p:
            assert (await p.send("t", b"a", key=b"k", headers=[("h", b"1")])).ok
            cluster.move_leader(2)
            assert (await p.send("t", b"b")).offset == 1
        async with Admin(cluster.bootstrap) as admin:
            assert await admin.list_offsets([TP], spec="latest") == {TP: 2}
            assert await admin.list_offsets([TP], spec="earliest") == {TP: 0}
            (info,) = (await admin.describe_topics(["t"]))["t"].partitions
            assert info.leader == 2
            assert info.epoch == (1 if versions is NEWEST else -1)  # Metadata v7+ has epochs
        async with Consumer(cluster.bootstrap, fetch_max_wait_ms=50) as c:
            c.assign([TP])
            got = await c.poll(timeout_ms=2000)
            assert [(r.key, r.value, r.headers) for r in got] == [
                (b"k", b"a", (("h", b"1"),)),
                (None, b"b", ()),
            ]

    run(scenario, versions=dict(versions))
