"""Reach a Docker daemon, starting one on this machine if none answers.

:func:`ensure_daemon` first tries the daemon the environment names (``DOCKER_HOST``
or ``/var/run/docker.sock``). Only if nothing answers, and we are root on Linux with
``dockerd`` installed, does it start one, in its own session so it outlives the
test or run that started it, logging to ``/var/log/rift-dockerd.log``.

A daemon we start is told to leave the machine alone: ``--iptables=false`` and
``--ip6tables=false`` (no rule in the machine's own iptables, no NAT: our networks
carry traffic only among our containers and this host) and ``--bridge=none`` (no
default ``docker0`` bridge or its 172.17/16 route). A daemon that was already
running is used as it is.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rift_chaos.errors import BackendUnavailable

if TYPE_CHECKING:
    import docker

__all__ = ["DOCKERD_ARGS", "docker_unavailable", "ensure_daemon", "try_client"]

DOCKERD_ARGS = ("--iptables=false", "--ip6tables=false", "--bridge=none")
_LOG = Path("/var/log/rift-dockerd.log")
_START_TIMEOUT = 60.0
# dockerd outlives us on purpose; holding its Popen keeps Python from warning that
# it is "still running" when the object would otherwise be collected.
_STARTED: list[subprocess.Popen[bytes]] = []


def try_client(*, timeout: float = 120.0) -> docker.DockerClient | None:
    """A client of a daemon that answers now, or ``None``; never starts one.

    ``timeout`` bounds every request of the client, the first ping included."""
    try:
        import docker
        import docker.errors
    except ImportError:
        return None
    if not _unix_socket_answers(timeout):
        return None
    try:
        client = docker.from_env(timeout=int(timeout))
    except (docker.errors.DockerException, OSError):
        return None
    try:
        client.ping()
    except (docker.errors.DockerException, OSError):
        client.close()
        return None
    return client


def _unix_socket_answers(timeout: float) -> bool:
    """Whether the daemon's Unix socket takes a connection (``True`` for other hosts).

    docker.from_env() asks the daemon for its API version while it is constructed,
    and leaks its socket when the connection fails: look first, with a socket we
    close ourselves."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        return True
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(min(timeout, 5.0))
        try:
            probe.connect(host.removeprefix("unix://"))
        except OSError:
            return False
    return True


def docker_unavailable() -> str | None:
    """``None`` if :func:`ensure_daemon` can succeed here, else the reason it cannot."""
    try:
        import docker  # noqa: F401
    except ImportError:
        return "the docker backend needs the `docker` Python package (pip install docker)"
    client = try_client(timeout=10.0)
    if client is not None:
        client.close()
        return None
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "no Docker daemon answers, and starting one needs root"
    if shutil.which("dockerd") is None:
        return "no Docker daemon answers and `dockerd` is not installed (apt-get install docker.io)"
    return None


def ensure_daemon(*, timeout: float = _START_TIMEOUT) -> docker.DockerClient:
    """A client of a running daemon; start ``dockerd`` first if none answers."""
    client = try_client()
    if client is not None:
        return client
    reason = docker_unavailable()
    if reason:
        raise BackendUnavailable(reason)
    dockerd = shutil.which("dockerd")
    assert dockerd is not None  # docker_unavailable checked it
    _LOG.parent.mkdir(parents=True, exist_ok=True)
    with _LOG.open("ab") as log:
        proc = subprocess.Popen(
            (dockerd, *DOCKERD_ARGS),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _STARTED.append(proc)
    # If another process won the race to start dockerd, ours exits (the pidfile is
    # taken) and theirs answers soon: keep polling until the deadline either way.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        client = try_client()
        if client is not None:
            return client
        time.sleep(0.2)
    if proc.poll() is not None:
        raise BackendUnavailable(f"dockerd exited {proc.returncode} at start; see {_LOG} for why")
    raise BackendUnavailable(f"dockerd did not answer within {timeout:g}s; see {_LOG}")
