from __future__ import annotations

import pytest

from rift_chaos.errors import UnsupportedAbility
from rift_chaos.fake_system import FakeSystem
from rift_chaos.nemesis import (
    ClockNemesis,
    ComposedNemesis,
    KillNemesis,
    NemesisContext,
    NoopNemesis,
    PartitionNemesis,
    PauseNemesis,
    Timeline,
)
from rift_chaos.op import NEMESIS, Op, OpType
from rift_chaos.remote import FakeCluster


def nemesis_op(f: str, value: object = None) -> Op:
    return Op(type=OpType.INVOKE, f=f, process=NEMESIS, value=value)


def system_of(ctx: NemesisContext) -> FakeSystem:
    assert isinstance(ctx.system, FakeSystem)
    return ctx.system


def test_kill_and_restart(ctx: NemesisContext) -> None:
    nemesis = KillNemesis()
    nemesis.setup(ctx)
    done = nemesis.invoke(nemesis_op("kill", {"nodes": ["n2", "n3"]}))
    assert (done.type, done.value) == (OpType.OK, {"nodes": ["n2", "n3"]})
    assert not system_of(ctx).serving("n2")
    assert {w.node for w in ctx.timeline.active()} == {"n2", "n3"}
    back = nemesis.invoke(nemesis_op("restart"))
    assert back.value == {"nodes": ["n2", "n3"]}
    assert system_of(ctx).serving("n2")
    assert ctx.timeline.active() == []


def test_kill_the_leader_and_teardown_restarts(ctx: NemesisContext) -> None:
    nemesis = KillNemesis()
    nemesis.setup(ctx)
    done = nemesis.invoke(nemesis_op("kill", {"target": "leader"}))
    assert done.value == {"nodes": ["n1"]}
    nemesis.teardown()
    assert system_of(ctx).serving("n1")


def test_pause_and_resume(ctx: NemesisContext) -> None:
    cluster = ctx.cluster
    assert isinstance(cluster, FakeCluster)
    nemesis = PauseNemesis()
    nemesis.setup(ctx)
    nemesis.invoke(nemesis_op("pause", {"nodes": ["n4"]}))
    assert not system_of(ctx).serving("n4")
    assert cluster.remote("n4").processes[min(cluster.remote("n4").processes)].state == "stopped"
    nemesis.teardown()
    assert system_of(ctx).serving("n4")


def test_unknown_node_completes_info(ctx: NemesisContext) -> None:
    nemesis = KillNemesis()
    nemesis.setup(ctx)
    done = nemesis.invoke(nemesis_op("kill", {"nodes": ["n9"]}))
    assert done.type is OpType.INFO
    assert "unknown node" in (done.error or "")


def test_process_nemesis_needs_a_system(fake_cluster: FakeCluster, ticks) -> None:
    ctx = NemesisContext(cluster=fake_cluster, timeline=Timeline(), now=ticks)
    with pytest.raises(UnsupportedAbility, match="needs a System"):
        KillNemesis().setup(ctx)


def test_clock_offsets_and_reset(ctx: NemesisContext) -> None:
    cluster = ctx.cluster
    assert isinstance(cluster, FakeCluster)
    nemesis = ClockNemesis()
    nemesis.setup(ctx)
    done = nemesis.invoke(nemesis_op("clock-offset", {"offsets": {"n1": 12.5, "n2": -3}}))
    assert done.type is OpType.OK
    assert cluster.remote("n1").read_file("fake-system/faketime") == b"+12.5s\n"
    assert cluster.remote("n2").read_file("fake-system/faketime") == b"-3s\n"
    assert len(ctx.timeline.active()) == 2
    reset = nemesis.invoke(nemesis_op("clock-reset"))
    assert reset.value == {"nodes": ["n1", "n2"]}
    assert cluster.remote("n1").read_file("fake-system/faketime") == b"+0s\n"
    assert ctx.timeline.active() == []
    bad = nemesis.invoke(nemesis_op("clock-offset", {"offsets": {"zz": 1}}))
    assert bad.type is OpType.INFO


def test_composition_routes_by_f_and_tears_down_all(ctx: NemesisContext) -> None:
    cluster = ctx.cluster
    assert isinstance(cluster, FakeCluster)
    nemesis = ComposedNemesis([PartitionNemesis(), KillNemesis(), PauseNemesis(), ClockNemesis()])
    assert "start-partition" in nemesis.fs
    assert "resume" in nemesis.fs
    nemesis.setup(ctx)
    nemesis.invoke(nemesis_op("kill", {"nodes": ["n1"]}))
    nemesis.invoke(nemesis_op("start-partition", {"grudge": {"n2": ["n3"]}}))
    with pytest.raises(ValueError, match="no nemesis handles"):
        nemesis.invoke(nemesis_op("explode"))
    nemesis.teardown()
    assert system_of(ctx).serving("n1")
    assert all(cluster.remote(n.name).firewall.empty for n in cluster.nodes)


def test_composition_rejects_overlap() -> None:
    with pytest.raises(ValueError, match="overlap"):
        ComposedNemesis([KillNemesis(), KillNemesis()])
    assert NoopNemesis().fs == frozenset()
