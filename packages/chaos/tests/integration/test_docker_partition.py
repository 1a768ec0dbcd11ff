"""Partitions with real iptables inside real Docker containers, and the docker network."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator

import pytest

from rift_chaos.nemesis import NemesisContext, PartitionNemesis, Timeline, grudge
from rift_chaos.op import NEMESIS, Op, OpType
from rift_chaos.remote._docker_daemon import docker_unavailable

SKIP = None if hasattr(os, "geteuid") and os.geteuid() == 0 else docker_unavailable()

pytestmark = [
    pytest.mark.integration,
    pytest.mark.docker,
    # As root (CI) this must run: a missing package fails loudly instead of skipping.
    pytest.mark.skipif(SKIP is not None, reason=SKIP or ""),
]

SERVER = """
import socket
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
def cluster() -> Iterator:
    from rift_chaos.remote.docker import DockerCluster, heal_docker

    built = DockerCluster(nodes=3)
    built.setup()
    try:
        for node in built.nodes:
            remote = built.remote(node.name)
            remote.write_file("server.py", SERVER.encode())
            remote.write_file("probe.py", PROBE.encode())
            # The image's own python3, not the mounted control interpreter.
            remote.start_daemon(["python3", "server.py"], log="server.log", pidfile="s.pid")
        yield built
    finally:
        built.teardown()
    assert heal_docker(built.run_id) == ([], [])


def connects(cluster, source: str, dest: str, *, timeout: float = 1.0) -> bool:
    host = cluster.remote(dest).node.host
    result = cluster.remote(source).run(
        ["python3", "probe.py", host, str(timeout)], check=False, timeout=30
    )
    return result.ok


def wait_connected(cluster, source: str, dest: str) -> bool:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if connects(cluster, source, dest):
            return True
    return False


def control_connects(host: str) -> bool:
    try:
        socket.create_connection((host, 7071), timeout=1).close()
    except OSError:
        return False
    return True


def op(f: str, value: object = None) -> Op:
    return Op(type=OpType.INVOKE, f=f, process=NEMESIS, value=value)


def test_isolating_a_container_cuts_it_off_and_healing_restores_it(cluster) -> None:
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
        # The control process (this host) is never partitioned from the nodes.
        assert control_connects(cluster.remote("n1").node.host)
        assert cluster.remote("n1").run(["true"]).ok
        assert nemesis.invoke(op("stop-partition")).type is OpType.OK
        assert wait_connected(cluster, "n2", "n1")
        assert wait_connected(cluster, "n1", "n3")
    finally:
        nemesis.teardown()
    for node in cluster.nodes:
        listing = cluster.remote(node.name).iptables(["-S"]).stdout
        assert "RIFT" not in listing
        assert "rift-" not in listing


def test_containers_reach_only_their_network(cluster) -> None:
    remote = cluster.remote("n1")
    routes = remote.run(["ip", "-4", "route", "show"]).stdout
    assert "default" not in routes
    assert all(line.startswith(str(cluster.subnet.network_address)) for line in routes.splitlines())
    assert remote.run(["ip", "-6", "addr", "show"]).stdout.strip() == ""
    assert remote.run(["hostname"]).stdout == "n1\n"
    # Peers resolve each other by node name.
    assert cluster.remote("n2").run(["getent", "hosts", "n1"]).stdout.split()[0] == (
        cluster.nodes[0].host
    )
    assert control_connects(cluster.nodes[2].host)


def test_the_control_python_and_workspace_are_mounted_read_only(cluster) -> None:
    import sys

    remote = cluster.remote("n1")
    out = remote.run([sys.executable, "-c", "import rift_chaos, sys; print(sys.version_info[:2])"])
    assert out.stdout.strip() == str(tuple(sys.version_info[:2]))
    assert remote.run(["python3", "-c", "import sys; print(sys.version_info[:2])"]).stdout == (
        "(3, 11)\n"
    )
    assert not remote.run(["touch", f"{sys.prefix}/rift-write-test"], check=False).ok
