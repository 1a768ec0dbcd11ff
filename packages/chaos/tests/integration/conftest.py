"""Fixtures for clusters on every backend, each torn down by a finalizer."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from rift_chaos.remote import Cluster, FakeCluster, LocalCluster, NetnsCluster, netns_available
from rift_chaos.remote._docker_daemon import docker_unavailable
from rift_chaos.remote._ssh_rig import SshRigCluster, sshd_rig_unavailable
from rift_chaos.remote.heal import run_links, run_namespaces

NETNS_SKIP = netns_available()
# As root (CI) these backends must work: a missing package fails loudly instead.
_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
DOCKER_SKIP = None if _ROOT else docker_unavailable()
SSH_SKIP = None if _ROOT else sshd_rig_unavailable()

BACKEND_PARAMS = [
    pytest.param("fake", id="fake"),
    pytest.param("local", id="local", marks=pytest.mark.integration),
    pytest.param(
        "netns",
        id="netns",
        marks=[
            pytest.mark.integration,
            pytest.mark.root,
            pytest.mark.skipif(NETNS_SKIP is not None, reason=NETNS_SKIP or ""),
        ],
    ),
    pytest.param(
        "docker",
        id="docker",
        marks=[
            pytest.mark.integration,
            pytest.mark.docker,
            pytest.mark.skipif(DOCKER_SKIP is not None, reason=DOCKER_SKIP or ""),
        ],
    ),
    pytest.param(
        "ssh",
        id="ssh",
        marks=[
            pytest.mark.integration,
            pytest.mark.ssh,
            pytest.mark.root,
            pytest.mark.skipif(SSH_SKIP is not None, reason=SSH_SKIP or ""),
        ],
    ),
]


def build_cluster(backend: str, *, nodes: int, tmp_path: Path) -> Cluster:
    if backend == "fake":
        return FakeCluster(nodes=nodes)
    if backend == "local":
        return LocalCluster(nodes=nodes, base=tmp_path)
    if backend == "docker":
        from rift_chaos.remote.docker import DockerCluster

        return DockerCluster(nodes=nodes)
    if backend == "ssh":  # real sshd servers in namespaces of their own (_ssh_rig.py)
        return SshRigCluster(nodes=nodes, base=tmp_path)
    return NetnsCluster(nodes=nodes, base=tmp_path)


def root_iptables() -> str:
    """The machine's own rules, which no backend may ever change."""
    done = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True)
    return "\n".join(line for line in done.stdout.splitlines() if not line.startswith("#"))


@pytest.fixture(params=BACKEND_PARAMS)
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    before = root_iptables() if request.param in ("netns", "ssh") else None
    built = build_cluster(request.param, nodes=3, tmp_path=tmp_path)
    built.setup()
    try:
        yield built
    finally:
        built.teardown()
    if request.param == "docker":
        from rift_chaos.remote.docker import heal_docker

        assert heal_docker(built.run_id) == ([], []), "teardown left containers or networks"
    if request.param == "ssh":
        assert root_iptables() == before
    if request.param == "netns":
        assert run_namespaces(built.run_id) == []
        assert run_links(built.run_id) == []
        assert root_iptables() == before
