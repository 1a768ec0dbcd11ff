"""The ssh backend against real sshd servers (each in a namespace of its own, _ssh_rig.py):
host key verification, partitions over ssh, and healing a crashed run."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rift_chaos.errors import BackendUnavailable
from rift_chaos.nemesis import NemesisContext, PartitionNemesis, Timeline, grudge
from rift_chaos.op import NEMESIS, Op, OpType
from rift_chaos.remote import make_cluster, new_run_id
from rift_chaos.remote._process import pid_alive
from rift_chaos.remote._ssh_rig import SshdRig, sshd_rig_unavailable
from rift_chaos.remote.ssh import SshCluster, SshHost

SKIP = None if hasattr(os, "geteuid") and os.geteuid() == 0 else sshd_rig_unavailable()

pytestmark = [
    pytest.mark.integration,
    pytest.mark.ssh,
    pytest.mark.root,
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


def root_iptables() -> str:
    done = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True)
    return "\n".join(line for line in done.stdout.splitlines() if not line.startswith("#"))


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[SshdRig]:
    before = root_iptables()
    with SshdRig(nodes=3, base=tmp_path) as built:
        yield built
    assert root_iptables() == before, "the machine's own iptables must never change"


def op(f: str, value: object = None) -> Op:
    return Op(type=OpType.INVOKE, f=f, process=NEMESIS, value=value)


def connects(cluster: SshCluster, source: str, dest: str) -> bool:
    host = cluster.remote(dest).node.host
    return cluster.remote(source).run(["python3", "probe.py", host, "1"], check=False).ok


def wait_connected(cluster: SshCluster, source: str, dest: str) -> bool:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if connects(cluster, source, dest):
            return True
    return False


def test_unknown_and_wrong_host_keys_are_refused(rig: SshdRig, tmp_path: Path) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with pytest.raises(BackendUnavailable, match="known_hosts"):
        SshCluster(hosts=rig.hosts()[:1], known_hosts=empty).setup()
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    wrong = other.with_suffix(".pub").read_text().split()
    host = rig.hosts()[0]
    lying = tmp_path / "lying_known_hosts"
    lying.write_text(f"{host.address} {wrong[0]} {wrong[1]}\n")
    with pytest.raises(BackendUnavailable, match="does not match"):
        SshCluster(hosts=[host], known_hosts=lying).setup()
    # An explicitly pinned host key works without any known_hosts entry.
    pinned_key = (rig.keys / "host_ed25519.pub").read_text().split()
    pinned = SshHost(
        name="n1",
        address=host.address,
        key=host.key,
        host_key=f"{pinned_key[0]} {pinned_key[1]}",
    )
    with SshCluster(hosts=[pinned], known_hosts=empty) as cluster:
        assert cluster.remote("n1").run(["hostname"]).ok
    # The test-rig switch: accept whatever key the host offers.
    with SshCluster(hosts=[host], known_hosts=empty, accept_unknown_host_keys=True) as cluster:
        assert cluster.remote("n1").run(["true"]).ok


def test_make_cluster_reads_the_hosts_file(
    rig: SshdRig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [f"known_hosts: {rig.known_hosts}", "hosts:"]
    for h in rig.hosts():
        lines.append(f"  - {{name: {h.name}, address: {h.address}, user: root, key: {h.key}}}")
    hosts_file = tmp_path / "hosts.yaml"
    hosts_file.write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("RIFT_SSH_HOSTS", str(hosts_file))
    with make_cluster("ssh", nodes=2) as cluster:
        assert [n.name for n in cluster.nodes] == ["n1", "n2"]
        assert cluster.remote("n2").run(["hostname", "-I"]).ok
    with pytest.raises(BackendUnavailable, match="needs 5"):
        make_cluster("ssh", nodes=5)
    monkeypatch.delenv("RIFT_SSH_HOSTS")
    with pytest.raises(BackendUnavailable, match="RIFT_SSH_HOSTS"):
        make_cluster("ssh", nodes=1)


def test_partition_over_ssh_and_heal_restores(rig: SshdRig) -> None:
    with rig.cluster() as cluster:
        for node in cluster.nodes:
            remote = cluster.remote(node.name)
            remote.write_file("server.py", SERVER.encode())
            remote.write_file("probe.py", PROBE.encode())
            remote.start_daemon(["python3", "server.py"], log="server.log", pidfile="s.pid")
        for dest in ("n1", "n3"):
            assert wait_connected(cluster, "n2", dest)
        clock = iter(range(1, 1000))
        ctx = NemesisContext(cluster=cluster, timeline=Timeline(), now=lambda: next(clock))
        nemesis = PartitionNemesis()
        nemesis.setup(ctx)
        try:
            isolate = grudge.to_value(grudge.isolate(["n1", "n2", "n3"], "n1"))
            assert nemesis.invoke(op("start-partition", {"grudge": isolate})).type is OpType.OK
            assert not connects(cluster, "n2", "n1")
            assert connects(cluster, "n2", "n3")
            rules = cluster.remote("n1").iptables(["-S", f"RIFT-{cluster.run_id}"]).stdout
            assert rules.count("-j DROP") == 2
            # ssh itself (control -> node) is never partitioned.
            assert cluster.remote("n1").run(["true"]).ok
            assert nemesis.invoke(op("stop-partition")).type is OpType.OK
            assert wait_connected(cluster, "n2", "n1")
        finally:
            nemesis.teardown()


def test_heal_over_ssh_removes_chains_and_processes_of_a_crashed_run(rig: SshdRig) -> None:
    run_id = new_run_id()
    crashed = rig.cluster(run_id=run_id)
    crashed.setup()
    daemons = [
        crashed.remote(n.name).start_daemon(["sleep", "600"], log="s.log", pidfile="s.pid")
        for n in crashed.nodes
    ]
    ctx = NemesisContext(cluster=crashed, timeline=Timeline(), now=lambda: 0)
    nemesis = PartitionNemesis()
    nemesis.setup(ctx)
    nemesis.apply(grudge.halves(["n1", "n2", "n3"]), time=0)
    # The crash: connections drop, nothing is torn down.
    for name in ("n1", "n2", "n3"):
        crashed.remote(name).close()
    # The rig's sshd servers share this machine's pid namespace, so pids are ours too.
    assert all(pid_alive(d.pid) for d in daemons)

    healer = rig.cluster(run_id=run_id)
    healer.setup()
    try:
        removed = healer.heal()
        assert sum(line.endswith(f"chain RIFT-{run_id}") for line in removed) == 3
        assert not any(pid_alive(d.pid) for d in daemons)
        for node in healer.nodes:
            listing = healer.remote(node.name).iptables(["-S"]).stdout
            assert f"RIFT-{run_id}" not in listing
            assert f"rift-{run_id}" not in listing
        assert not any("chain" in line for line in healer.heal())  # idempotent
    finally:
        healer.teardown()
