"""Partitions with real iptables inside real network namespaces (root only)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rift_chaos.nemesis import NemesisContext, PartitionNemesis, Timeline, grudge
from rift_chaos.op import NEMESIS, Op, OpType
from rift_chaos.remote import NetnsCluster, netns_available

pytestmark = [
    pytest.mark.integration,
    pytest.mark.root,
    pytest.mark.skipif(netns_available() is not None, reason=netns_available() or ""),
]

SERVER = """
import socket, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", 7071))
srv.listen(16)
while True:
    conn, _ = srv.accept()
    conn.close()
"""

PROBE = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], 7071), timeout=float(sys.argv[2])).close()
except OSError:
    sys.exit(1)
"""


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NetnsCluster]:
    before = root_iptables()
    built = NetnsCluster(nodes=3, base=tmp_path)
    built.setup()
    try:
        for node in built.nodes:
            remote = built.remote(node.name)
            remote.write_file("server.py", SERVER.encode())
            remote.write_file("probe.py", PROBE.encode())
            remote.start_daemon([sys.executable, "server.py"], log="server.log", pidfile="s.pid")
        yield built
    finally:
        built.teardown()
    assert root_iptables() == before, "the machine's own iptables must never change"


def root_iptables() -> str:
    """The machine's own rules, which no backend may ever change."""
    done = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True)
    return "\n".join(line for line in done.stdout.splitlines() if not line.startswith("#"))


def connects(cluster: NetnsCluster, source: str, dest: str, *, timeout: float = 1.0) -> bool:
    host = cluster.remote(dest).node.host
    result = cluster.remote(source).run(
        [sys.executable, "probe.py", host, str(timeout)], check=False, timeout=30
    )
    return result.ok


def wait_connected(cluster: NetnsCluster, source: str, dest: str) -> bool:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if connects(cluster, source, dest):
            return True
    return False


def op(f: str, value: object = None) -> Op:
    return Op(type=OpType.INVOKE, f=f, process=NEMESIS, value=value)


def test_isolating_a_node_cuts_it_off_and_healing_restores_it(cluster: NetnsCluster) -> None:
    for dest in ("n1", "n2", "n3"):
        assert wait_connected(cluster, "n2" if dest != "n2" else "n1", dest)
    clock = iter(range(1, 1000))
    ctx = NemesisContext(cluster=cluster, timeline=Timeline(), now=lambda: next(clock))
    nemesis = PartitionNemesis()
    nemesis.setup(ctx)
    try:
        isolate = grudge.to_value(grudge.isolate(["n1", "n2", "n3"], "n1"))
        assert nemesis.invoke(op("start-partition", {"grudge": isolate})).type is OpType.OK
        assert not connects(cluster, "n2", "n1")
        assert not connects(cluster, "n1", "n3")
        assert connects(cluster, "n2", "n3")
        rules = cluster.remote("n1").iptables(["-S", f"RIFT-{cluster.run_id}"]).stdout
        assert rules.count("-j DROP") == 2
        assert f"--comment rift-{cluster.run_id}" in rules
        # The control process is never partitioned from the nodes.
        assert cluster.remote("n1").run(["true"]).ok
        assert nemesis.invoke(op("stop-partition")).type is OpType.OK
        assert wait_connected(cluster, "n2", "n1")
    finally:
        nemesis.teardown()
    for node in cluster.nodes:
        listing = cluster.remote(node.name).iptables(["-S"]).stdout
        assert "RIFT" not in listing
        assert "rift-" not in listing


def test_one_way_partition_rules_are_directional(cluster: NetnsCluster) -> None:
    clock = iter(range(1, 1000))
    ctx = NemesisContext(cluster=cluster, timeline=Timeline(), now=lambda: next(clock))
    nemesis = PartitionNemesis()
    nemesis.setup(ctx)
    try:
        value = grudge.to_value(grudge.one_way(["n1", "n2", "n3"], senders=["n1"]))
        nemesis.invoke(op("start-partition", {"grudge": value}))
        n1 = cluster.remote("n1").iptables(["-S", f"RIFT-{cluster.run_id}"]).stdout
        n2 = cluster.remote("n2").iptables(["-S", f"RIFT-{cluster.run_id}"]).stdout
        assert "-j DROP" not in n1
        assert f"-s {cluster.remote('n1').node.host}/32" in n2
        assert connects(cluster, "n2", "n3")
    finally:
        nemesis.teardown()
