from __future__ import annotations

import pytest

from rift_chaos.errors import UnsupportedAbility
from rift_chaos.nemesis import NemesisContext, PartitionNemesis, Timeline, grudge
from rift_chaos.op import NEMESIS, Op, OpType
from rift_chaos.remote import FakeCluster, LocalCluster

NODES = ["n1", "n2", "n3", "n4", "n5"]


def nemesis_op(f: str, value: object = None) -> Op:
    return Op(type=OpType.INVOKE, f=f, process=NEMESIS, value=value)


def reach(cluster: FakeCluster) -> set[tuple[str, str]]:
    return {(a, b) for a in NODES for b in NODES if a != b and cluster.reachable(a, b)}


def test_setup_installs_chain_and_jump_on_every_node(ctx: NemesisContext) -> None:
    nemesis = PartitionNemesis()
    nemesis.setup(ctx)
    nemesis.setup(ctx)  # idempotent: one jump, not two
    cluster = ctx.cluster
    assert isinstance(cluster, FakeCluster)
    for node in NODES:
        chains = cluster.remote(node).firewall.chains
        assert chains["RIFT-t1"] == []
        assert chains["INPUT"] == [("-m", "comment", "--comment", "rift-t1", "-j", "RIFT-t1")]


def test_grudge_applies_and_heals(ctx: NemesisContext) -> None:
    cluster = ctx.cluster
    assert isinstance(cluster, FakeCluster)
    nemesis = PartitionNemesis()
    nemesis.setup(ctx)
    done = nemesis.invoke(
        nemesis_op("start-partition", {"grudge": grudge.to_value(grudge.halves(NODES))})
    )
    assert done.type is OpType.OK
    assert done.value["grudge"]["n1"] == ["n3", "n4", "n5"]
    assert ("n3", "n1") not in reach(cluster)
    assert ("n1", "n2") in reach(cluster)
    assert [w.kind for w in ctx.timeline.active()] == ["partition"]
    healed = nemesis.invoke(nemesis_op("stop-partition"))
    assert healed.type is OpType.OK
    assert len(reach(cluster)) == 20
    assert ctx.timeline.active() == []
    nemesis.invoke(nemesis_op("stop-partition"))  # healing twice is fine


def test_a_new_grudge_replaces_the_old_one(ctx: NemesisContext) -> None:
    cluster = ctx.cluster
    assert isinstance(cluster, FakeCluster)
    nemesis = PartitionNemesis()
    nemesis.setup(ctx)
    nemesis.invoke(
        nemesis_op("start-partition", {"grudge": grudge.to_value(grudge.isolate(NODES, "n1"))})
    )
    nemesis.invoke(
        nemesis_op("start-partition", {"grudge": grudge.to_value(grudge.isolate(NODES, "n2"))})
    )
    assert ("n1", "n3") in reach(cluster)
    assert ("n2", "n3") not in reach(cluster)
    windows = ctx.timeline.windows()
    assert len(windows) == 2
    assert windows[0].end is not None


def test_one_way_grudge_is_directional(ctx: NemesisContext) -> None:
    cluster = ctx.cluster
    assert isinstance(cluster, FakeCluster)
    nemesis = PartitionNemesis()
    nemesis.setup(ctx)
    value = grudge.to_value(grudge.one_way(NODES, senders=["n1"]))
    nemesis.invoke(nemesis_op("start-partition", {"grudge": value}))
    assert cluster.reachable("n2", "n1")
    assert not cluster.reachable("n1", "n2")


def test_isolate_the_leader(ctx: NemesisContext) -> None:
    cluster = ctx.cluster
    assert isinstance(cluster, FakeCluster)
    nemesis = PartitionNemesis()
    nemesis.setup(ctx)
    done = nemesis.invoke(nemesis_op("start-partition", {"target": "leader"}))
    assert done.type is OpType.OK
    assert done.value["grudge"]["n1"] == ["n2", "n3", "n4", "n5"]  # the fake's leader is n1


def test_bad_grudge_completes_info(ctx: NemesisContext) -> None:
    nemesis = PartitionNemesis()
    nemesis.setup(ctx)
    done = nemesis.invoke(nemesis_op("start-partition", {"grudge": {"n1": ["zz"]}}))
    assert done.type is OpType.INFO
    assert "unknown node" in (done.error or "")


def test_teardown_removes_everything_of_ours_only(ctx: NemesisContext) -> None:
    cluster = ctx.cluster
    assert isinstance(cluster, FakeCluster)
    foreign = ("-s", "192.0.2.1", "-j", "DROP")
    cluster.remote("n1").iptables(["-A", "INPUT", *foreign])
    nemesis = PartitionNemesis()
    nemesis.setup(ctx)
    nemesis.invoke(nemesis_op("start-partition", {"grudge": grudge.to_value(grudge.halves(NODES))}))
    nemesis.teardown()
    nemesis.teardown()
    assert cluster.remote("n1").firewall.chains == {"INPUT": [foreign], "FORWARD": [], "OUTPUT": []}
    assert all(cluster.remote(n).firewall.empty for n in NODES[1:])


def test_local_backend_is_refused(tmp_path, ticks) -> None:
    cluster = LocalCluster(nodes=2, base=tmp_path)
    ctx = NemesisContext(cluster=cluster, timeline=Timeline(), now=ticks)
    with pytest.raises(UnsupportedAbility, match="use netns"):
        PartitionNemesis().setup(ctx)
