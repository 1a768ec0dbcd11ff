"""Remotes: how the toolkit acts on nodes, and the clusters that create them.

Backends: ``fake`` (in memory), ``local`` (plain processes), ``netns`` (one Linux
network namespace per node), ``docker`` (one container per node, ``remote.docker``)
and ``ssh`` (existing hosts through paramiko, ``remote.ssh``, hosts listed in the
file ``$RIFT_SSH_HOSTS``). The last two are imported only when asked for, since
their SDKs are optional.
"""

from __future__ import annotations

from pathlib import Path

from rift_chaos.errors import BackendUnavailable
from rift_chaos.remote._protocol import (
    RUN_ID_ENV,
    SIGNALS,
    Cluster,
    CommandResult,
    Daemon,
    Firewall,
    Node,
    Remote,
)
from rift_chaos.remote._runid import new_run_id, validate_run_id
from rift_chaos.remote.fake import FakeCluster, FakeRemote
from rift_chaos.remote.heal import HealReport, heal
from rift_chaos.remote.local import LocalCluster
from rift_chaos.remote.netns import NetnsCluster, netns_available

__all__ = [
    "BACKENDS",
    "RUN_ID_ENV",
    "SIGNALS",
    "Cluster",
    "CommandResult",
    "Daemon",
    "Firewall",
    "Node",
    "Remote",
    "FakeCluster",
    "FakeRemote",
    "LocalCluster",
    "NetnsCluster",
    "netns_available",
    "HealReport",
    "heal",
    "new_run_id",
    "validate_run_id",
    "make_cluster",
]

BACKENDS = ("netns", "local", "docker", "ssh", "fake")


def make_cluster(
    backend: str, *, nodes: int, run_id: str | None = None, base: Path | None = None
) -> Cluster:
    """A not-yet-set-up cluster of ``nodes`` nodes on ``backend``."""
    if backend == "fake":
        return FakeCluster(nodes=nodes, run_id=run_id)
    if backend == "local":
        return LocalCluster(nodes=nodes, run_id=run_id, base=base)
    if backend == "netns":
        return NetnsCluster(nodes=nodes, run_id=run_id, base=base)
    if backend == "docker":
        from rift_chaos.remote.docker import DockerCluster

        return DockerCluster(nodes=nodes, run_id=run_id)
    if backend == "ssh":
        from rift_chaos.remote.ssh import SshCluster

        return SshCluster.from_env(nodes=nodes, run_id=run_id)
    if backend in BACKENDS:
        raise BackendUnavailable(
            f"the {backend} backend is not implemented yet; use netns or local"
        )
    raise BackendUnavailable(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
