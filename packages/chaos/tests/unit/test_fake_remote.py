"""Fake-only behaviour beyond the conformance suite: handlers, firewall model, clock."""

from __future__ import annotations

import pytest

from rift_chaos.errors import BackendUnavailable, CommandTimeout
from rift_chaos.remote import FakeCluster, make_cluster
from rift_chaos.remote._firewall_sim import FirewallSim


def test_handlers_answer_commands() -> None:
    cluster = FakeCluster(nodes=1)
    cluster.handle("broker", lambda remote, cmd: (0, f"{remote.node.name}:{cmd.argv[1]}\n", ""))
    remote = cluster.remote("n1")
    assert remote.run(["/opt/bin/broker", "version"]).stdout == "n1:version\n"
    assert remote.commands == [("/opt/bin/broker", "version")]
    assert remote.run(["nope"], check=False).exit_code == 127


def test_sleep_advances_virtual_time_without_waiting() -> None:
    cluster = FakeCluster(nodes=1)
    cluster.remote("n1").run(["sleep", "100"], timeout=1000)
    assert cluster.clock == 100
    with pytest.raises(CommandTimeout):
        cluster.remote("n1").run(["sleep", "100"], timeout=2)
    assert cluster.clock == 102


def test_firewall_model_answers_like_iptables() -> None:
    fw = FirewallSim()
    assert fw.apply(["-N", "X"])[0] == 0
    assert fw.apply(["-N", "X"])[0] == 1
    assert fw.apply(["-w", "5", "-A", "X", "-s", "10.0.0.2/32", "-j", "DROP"])[0] == 0
    assert fw.dropped_sources() == set()  # X is not reached from INPUT
    assert fw.apply(["-I", "INPUT", "1", "-j", "X"])[0] == 0
    assert fw.dropped_sources() == {"10.0.0.2"}
    assert fw.apply(["-X", "X"])[0] == 1  # in use
    assert fw.apply(["-C", "INPUT", "-j", "Y"])[0] == 1
    assert fw.apply(["-F", "Y"])[0] == 1
    assert "-A X -s 10.0.0.2/32 -j DROP" in fw.apply(["-S"])[1]
    assert fw.apply(["-D", "INPUT", "-j", "X"])[0] == 0
    assert fw.apply(["-F", "X"])[0] == 0
    assert fw.apply(["-X", "X"])[0] == 0
    assert fw.empty


def test_make_cluster_knows_every_backend() -> None:
    assert isinstance(make_cluster("fake", nodes=2), FakeCluster)
    with pytest.raises(BackendUnavailable, match="RIFT_SSH_HOSTS"):
        make_cluster("ssh", nodes=2)  # ssh needs its hosts file
    with pytest.raises(BackendUnavailable, match="unknown backend"):
        make_cluster("vm", nodes=2)


def test_run_ids_are_validated() -> None:
    with pytest.raises(ValueError, match="run id"):
        FakeCluster(nodes=1, run_id="Bad-Id")
