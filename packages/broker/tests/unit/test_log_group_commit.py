"""Group commit: the sans-IO core's decisions, and the asyncio driver with a gated
fsync runner so every interleaving is chosen by the test (no threads, no sleeps)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from rift_broker.log import AppendInfo, LogConfig, LogStoppedError, PartitionLog
from rift_broker.log.group_commit import AsyncGroupCommitter, Flush, GroupCommit, Idle, WaitUntil
from rift_broker.records import build_batch
from rift_broker.storage import MemoryStorage

DIR = "/logs/g-0"
BATCH = build_batch([b"p" * 100] * 4)


# -- the core --


def test_group_flushes_at_max_batch_or_max_wait() -> None:
    core = GroupCommit(policy="group", max_batch=3, max_wait_ms=10)
    assert core.next_action(0) == Idle()
    core.note_append(100)
    core.note_append(104)
    assert core.next_action(105) == WaitUntil(110)
    assert core.next_action(110) == Flush()
    core.note_append(106)
    assert core.next_action(106) == Flush()  # max_batch reached
    assert core.flush_started(106) == 3
    core.note_append(107)
    assert core.next_action(200) == Idle()  # one fsync at a time
    core.flush_finished()
    assert core.next_action(117) == Flush()
    assert core.fsyncs == 1


def test_each_and_interval_policies() -> None:
    each = GroupCommit(policy="each")
    each.note_append(0)
    assert each.next_action(0) == Flush()
    interval = GroupCommit(policy="interval", interval_ms=1000)
    interval.note_append(5)
    assert interval.next_action(5) == WaitUntil(1000)
    assert interval.next_action(1000) == Flush()
    interval.flush_started(1000)
    interval.flush_finished()
    interval.note_append(1500)
    assert interval.next_action(1500) == WaitUntil(2000)


def test_failed_flush_stops_the_core() -> None:
    core = GroupCommit(policy="group")
    core.note_append(0)
    core.flush_started(0)
    core.flush_failed()
    core.note_append(1)
    assert core.next_action(1) == Idle()
    assert core.stopped


# -- the asyncio driver --


class GatedRunner:
    """Runs each fsync only when the test opens its gate."""

    def __init__(self) -> None:
        self.gates: list[asyncio.Event] = []

    async def __call__(self, function: Callable[[], None]) -> None:
        gate = asyncio.Event()
        self.gates.append(gate)
        await gate.wait()
        function()


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def make(
    policy: str = "group", **settings: int
) -> tuple[MemoryStorage, PartitionLog, GatedRunner, AsyncGroupCommitter]:
    storage = MemoryStorage()
    config = LogConfig(flush_policy=policy, **settings)  # type: ignore[arg-type]
    log = PartitionLog.open(DIR, config=config, storage=storage, now_ms=0)
    # Start epoch 0 up front: its checkpoint write is an fsync the tests should not count.
    log.append(BATCH, leader_epoch=0, now_ms=0)
    log.flush()
    runner = GatedRunner()
    committer = AsyncGroupCommitter(log, clock=lambda: 5000, run_sync=runner)
    return storage, log, runner, committer


def test_concurrent_appenders_share_fsyncs_and_wait_for_the_covering_one() -> None:
    async def scenario() -> None:
        storage, log, runner, committer = make()
        before = storage.fsync_count
        first = asyncio.create_task(committer.append(BATCH, leader_epoch=0))
        await settle()
        assert len(runner.gates) == 1  # the first fsync is in flight, covering one append
        rest = [asyncio.create_task(committer.append(BATCH, leader_epoch=0)) for _ in range(99)]
        await settle()
        assert not first.done()
        assert not any(task.done() for task in rest)
        assert len(runner.gates) == 1  # appends keep arriving while the fsync runs
        runner.gates[0].set()
        await settle()
        assert first.done()
        assert first.result().base_offset == 4
        assert not any(task.done() for task in rest)  # not covered by the first fsync
        assert log.flushed_offset == 8
        assert len(runner.gates) == 2
        runner.gates[1].set()
        await settle()
        infos: list[AppendInfo] = [task.result() for task in rest]
        assert sorted(info.base_offset for info in infos) == list(range(8, 404, 4))
        assert log.flushed_offset == 404
        assert storage.fsync_count - before == 2
        assert committer.core.fsyncs == 2
        storage.crash()
        assert (
            PartitionLog.open(DIR, config=log.config, storage=storage, now_ms=0).log_end_offset
            == 404
        )

    asyncio.run(scenario())


def test_failed_fsync_fails_every_waiter_and_later_appends() -> None:
    async def scenario() -> None:
        storage, log, runner, committer = make()
        tasks = [asyncio.create_task(committer.append(BATCH, leader_epoch=0)) for _ in range(10)]
        await settle()
        storage.fail_fsync = True
        runner.gates[0].set()
        await settle()
        for task in tasks:
            with pytest.raises(LogStoppedError):
                task.result()
        with pytest.raises(LogStoppedError):
            await committer.append(BATCH, leader_epoch=0)
        assert log.stopped
        storage.fail_fsync = False
        with pytest.raises(LogStoppedError):
            log.flush()  # never retried
        assert len(runner.gates) == 1

    asyncio.run(scenario())


def test_policy_each_fsyncs_every_append() -> None:
    async def scenario() -> None:
        storage, _, runner, committer = make("each")
        before = storage.fsync_count
        tasks = [asyncio.create_task(committer.append(BATCH, leader_epoch=0)) for _ in range(5)]
        for expected in range(1, 6):
            await settle()
            assert len(runner.gates) == expected
            assert sum(task.done() for task in tasks) == expected - 1
            runner.gates[-1].set()
        await settle()
        assert all(task.done() for task in tasks)
        assert storage.fsync_count - before == 5

    asyncio.run(scenario())


def test_policy_interval_acknowledges_before_the_fsync() -> None:
    async def scenario() -> None:
        storage, log, runner, committer = make("interval", flush_interval_ms=1000)
        info = await committer.append(BATCH, leader_epoch=0)
        assert info.base_offset == 4
        assert log.flushed_offset == 4
        await settle()
        assert len(runner.gates) == 1
        runner.gates[0].set()
        await committer.drain()
        assert log.flushed_offset == 8
        assert storage.unsynced_bytes(f"{DIR}/{0:020d}.log") == 0

    asyncio.run(scenario())


def test_max_batch_starts_the_fsync_before_max_wait() -> None:
    async def scenario() -> None:
        _, log, runner, committer = make(group_commit_max_batch=5, group_commit_max_wait_ms=10**9)
        tasks = [asyncio.create_task(committer.append(BATCH, leader_epoch=0)) for _ in range(5)]
        await settle()
        assert len(runner.gates) == 1
        runner.gates[0].set()
        await settle()
        assert all(task.done() for task in tasks)
        assert log.flushed_offset == 24
        await committer.close()
        assert log.stopped

    asyncio.run(scenario())
