"""NetnsCluster set-up and tear-down beyond the Remote contract (root only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rift_chaos.errors import BackendUnavailable
from rift_chaos.remote import NetnsCluster, netns_available
from rift_chaos.remote._ip import ip
from rift_chaos.remote.heal import bridge_namespace, run_links, run_namespaces

pytestmark = [
    pytest.mark.integration,
    pytest.mark.root,
    pytest.mark.skipif(netns_available() is not None, reason=netns_available() or ""),
]


def test_two_runs_get_separate_subnets_and_cannot_reach_each_other(tmp_path: Path) -> None:
    with (
        NetnsCluster(nodes=2, base=tmp_path / "a") as a,
        NetnsCluster(nodes=2, base=tmp_path / "b") as b,
    ):
        assert a.run_id != b.run_id
        assert not a.subnet.overlaps(b.subnet)
        own = a.remote("n1").run(["ip", "-4", "route", "get", a.nodes[1].host], check=False)
        assert own.ok
        assert "dev eth0" in own.stdout
        other = a.remote("n1").run(["ip", "-4", "route", "get", b.nodes[1].host], check=False)
        assert not other.ok
        assert "unreachable" in other.stderr
    for cluster in (a, b):
        assert run_namespaces(cluster.run_id) == []
        assert run_links(cluster.run_id) == []


def test_setup_refuses_a_run_id_that_left_namespaces_and_creates_nothing(tmp_path: Path) -> None:
    stale = NetnsCluster(nodes=2, base=tmp_path)
    ip(["netns", "add", bridge_namespace(stale.run_id)])
    try:
        with pytest.raises(BackendUnavailable, match="chaos heal --run-id"):
            stale.setup()
        assert run_namespaces(stale.run_id) == [bridge_namespace(stale.run_id)]
        assert run_links(stale.run_id) == []
    finally:
        stale.teardown()
    assert run_namespaces(stale.run_id) == []


def test_a_failed_setup_removes_what_it_created(tmp_path: Path, monkeypatch) -> None:
    cluster = NetnsCluster(nodes=3, base=tmp_path)
    import rift_chaos.remote.netns as netns
    from rift_chaos.errors import RemoteError

    real_ip = netns.ip
    calls = {"n": 0}

    def failing_ip(args, *, check=True):
        calls["n"] += 1
        if args[:2] == ["addr", "add"]:  # the control link's address: the last steps
            raise RemoteError("injected failure")
        return real_ip(args, check=check)

    monkeypatch.setattr(netns, "ip", failing_ip)
    with pytest.raises(RemoteError, match="injected"):
        cluster.setup()
    assert calls["n"] > 10
    assert run_namespaces(cluster.run_id) == []
    assert run_links(cluster.run_id) == []
