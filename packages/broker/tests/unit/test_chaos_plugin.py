"""The broker's toolkit plugin: what it reads back from a node's broker.log."""

from __future__ import annotations

from rift_broker.chaos_plugin import BrokerSystem
from rift_chaos.remote import FakeCluster
from rift_chaos.system import SystemSettings

PREFIX = "INFO rift_broker.cluster: observe"
LEADER = '{"kind": "leader", "topic": "t", "partition": 2, "epoch": 1, "node": 1}'
HW = (
    '{"kind": "high-watermark", "topic": "t", "partition": 2, "offset": 57, "epoch": 1,'
    ' "node": 1, "monotonic_ns": 5000000000}'
)
LOG = (
    f"2026-11-27 08:31:49,727 {PREFIX} {LEADER}\n"
    f"2026-11-27 08:31:49,793 {PREFIX} {HW}\n"
    "2026-11-27 08:31:50,000 INFO rift_broker.server: something else\n"
)


def test_observations_carry_the_log_time_and_node_names() -> None:
    cluster = FakeCluster(nodes=3, run_id="obs")
    system = BrokerSystem(settings=SystemSettings(topic="t", partitions=3))
    remote = cluster.remote(cluster.nodes[0].name)
    system.configure(remote, nodes=cluster.nodes)
    remote.write_file("broker.log", LOG.encode())
    facts = system.observations(remote)
    assert [f["f"] for f in facts] == ["leader", "high-watermark"]
    expected = cluster.nodes[0].name  # broker node id 1 is the cluster's first node
    assert facts[0]["value"] == {"topic": "t", "partition": 2, "epoch": 1, "node": expected}
    assert facts[1]["value"] == {"topic": "t", "partition": 2, "offset": 57, "epoch": 1}
    assert facts[0]["time_ms"] > 10**12  # no monotonic time: the log line's wall clock
    assert facts[1]["time_ms"] == 5000  # the broker's monotonic clock, in ms
