"""Fixtures for clusters on every backend, each torn down by a finalizer."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from rift_chaos.remote import Cluster, FakeCluster, LocalCluster, NetnsCluster, netns_available
from rift_chaos.remote.heal import run_links, run_namespaces

NETNS_SKIP = netns_available()

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
]


def build_cluster(backend: str, *, nodes: int, tmp_path: Path) -> Cluster:
    if backend == "fake":
        return FakeCluster(nodes=nodes)
    if backend == "local":
        return LocalCluster(nodes=nodes, base=tmp_path)
    return NetnsCluster(nodes=nodes, base=tmp_path)


def root_iptables() -> str:
    """The machine's own rules, which no backend may ever change."""
    done = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True)
    return "\n".join(line for line in done.stdout.splitlines() if not line.startswith("#"))


@pytest.fixture(params=BACKEND_PARAMS)
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    before = root_iptables() if request.param == "netns" else None
    built = build_cluster(request.param, nodes=3, tmp_path=tmp_path)
    built.setup()
    try:
        yield built
    finally:
        built.teardown()
    if request.param == "netns":
        assert run_namespaces(built.run_id) == []
        assert run_links(built.run_id) == []
        assert root_iptables() == before
