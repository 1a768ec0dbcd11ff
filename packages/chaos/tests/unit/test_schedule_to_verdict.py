"""A schedule driven through the fake system, written as a history, judged by the checker.

Not the runner (the lead writes that): a sequential stand-in proving the pieces
agree on the history schema, and that the fake system is valid under faults.
"""

from __future__ import annotations

import io

from rift_chaos.client import Client, complete_exceptionally
from rift_chaos.fake_system import FakeSystem
from rift_chaos.generator import ClientSpec, NemesisSpec, schedule
from rift_chaos.nemesis import (
    ComposedNemesis,
    KillNemesis,
    NemesisContext,
    PartitionNemesis,
    PauseNemesis,
    Timeline,
)
from rift_chaos.op import NEMESIS, Op, OpType, next_process
from rift_chaos.remote import FakeCluster
from rift_chaos.system import SystemSettings
from rift_checker import HistoryWriter, check_history

CONCURRENCY = 4


def drive(seed: int) -> tuple[str, Timeline]:
    cluster = FakeCluster(nodes=3, run_id="sv")
    settings = SystemSettings(partitions=2)
    system = FakeSystem(settings=settings)
    for node in cluster.nodes:
        system.start(cluster.remote(node.name))
    now = [0]
    timeline = Timeline()
    ctx = NemesisContext(cluster=cluster, timeline=timeline, now=lambda: now[0], system=system)
    nemesis = ComposedNemesis([PartitionNemesis(), KillNemesis(), PauseNemesis()])
    nemesis.setup(ctx)
    ops = schedule(
        nodes=[n.name for n in cluster.nodes],
        client=ClientSpec(concurrency=CONCURRENCY, rate=200, mix={"send": 3, "poll": 1}),
        nemesis=NemesisSpec(
            kinds=("kill", "pause", "partition-random-halves"), interval=0.5, schedule="random"
        ),
        time_limit=5.0,
        seed=seed,
        topic=settings.topic,
        partitions=settings.partitions,
    )
    out = io.StringIO()
    process_of = {w: w for w in range(CONCURRENCY)}
    clients: dict[int, Client] = {}
    with HistoryWriter(out, metadata={"seed": seed}) as history:

        def record(op: Op, done: Op, process: int | str, node: str | None) -> None:
            history.invoke(process=process, f=op.f, value=op.value, node=node, time=op.time)
            history.complete(
                process=process,
                type=str(done.type),
                value=done.value,
                error=done.error,
                node=node,
                time=done.time,
            )

        for op in ops:
            now[0] = op.time
            if op.process == NEMESIS:
                record(op, nemesis.invoke(op), NEMESIS, None)
                continue
            worker = int(op.process)
            process = process_of[worker]
            node = cluster.nodes[worker % 3]
            try:
                if process not in clients:
                    client = system.client()
                    client.open(node, timeout=1)
                    clients[process] = client
                done = clients[process].invoke(op)
            except ConnectionError as exc:
                done = complete_exceptionally(op, exc)
            record(op, done, process, node.name)
            if done.type is OpType.INFO:
                process_of[worker] = next_process(process, concurrency=CONCURRENCY)
                clients.pop(process, None)
        now[0] += 1
        nemesis.teardown()
        final = Op(type=OpType.INVOKE, f="final-read", process=10_000, time=now[0])
        reader = system.client()
        reader.open(cluster.nodes[0], timeout=1)
        record(final, reader.invoke(final), 10_000, "n1")
    return out.getvalue(), timeline


def test_fake_system_under_faults_is_valid_and_reproducible() -> None:
    text, timeline = drive(seed=3)
    result = check_history(io.StringIO(text))
    assert result.valid is True, result.anomalies
    assert result.statistics
    kinds = {w.kind for w in timeline.windows()}
    assert kinds  # some fault happened
    assert timeline.active() == []
    assert '"type":"info"' in text  # clients hit killed or paused nodes
    assert drive(seed=3)[0] == text
