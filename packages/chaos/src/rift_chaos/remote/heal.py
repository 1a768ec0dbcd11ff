"""Find and remove what a run left behind: processes, namespaces, links, containers.

Everything a backend creates is named after its run id (``rift-<runid>-n1``,
``rift-<runid>-br``, the control link ``rift<runid>``) and every process it starts
carries ``RIFT_RUN_ID=<runid>`` in its environment, so a crashed run can be cleaned
up from nothing but its id. Partition rules live inside the node namespaces and go
with them; nothing of ours is ever in the machine's own iptables.

Docker containers and networks carry the label ``rift.run_id=<runid>`` and are
removed through the daemon, if one is running (see ``docker.heal_docker``).

Healing is idempotent: healing a run that left nothing behind does nothing.
With ``run_id=None`` every run is healed (``chaos heal --all``), including runs
still in progress, so that is for a machine where no run is active.
"""

from __future__ import annotations

import os
import re
import signal
from dataclasses import dataclass
from pathlib import Path

from rift_chaos.errors import RemoteError
from rift_chaos.remote._ip import have_ip, ip
from rift_chaos.remote._protocol import RUN_ID_ENV
from rift_chaos.remote._runid import validate_run_id

__all__ = [
    "HealReport",
    "bridge_namespace",
    "control_link",
    "heal",
    "kill_run_processes",
    "node_namespace",
    "run_links",
    "run_namespaces",
]

_NETNS_DIR = Path("/run/netns")
_NAMESPACE = re.compile(r"rift-(?P<run>[a-z0-9]{1,10})-(?:br|n\d+)")
_LINK = re.compile(r"rift(?P<run>[a-z0-9]{1,10})")


def node_namespace(run_id: str, node: str) -> str:
    return f"rift-{run_id}-{node}"


def bridge_namespace(run_id: str) -> str:
    return f"rift-{run_id}-br"


def control_link(run_id: str) -> str:
    """The control process's end of the link into the bridge namespace."""
    return f"rift{run_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class HealReport:
    processes: tuple[int, ...]
    namespaces: tuple[str, ...]
    links: tuple[str, ...]
    #: Docker containers and networks labelled with the run id (docker backend).
    containers: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (
            self.processes or self.namespaces or self.links or self.containers or self.networks
        )


def _matches(pattern: re.Pattern[str], name: str, run_id: str | None) -> bool:
    m = pattern.fullmatch(name)
    return m is not None and (run_id is None or m["run"] == run_id)


def run_namespaces(run_id: str | None) -> list[str]:
    """Network namespaces of ``run_id`` (of every run if ``None``)."""
    try:
        names = sorted(p.name for p in _NETNS_DIR.iterdir())
    except OSError:
        return []
    return [n for n in names if _matches(_NAMESPACE, n, run_id)]


def run_links(run_id: str | None) -> list[str]:
    """Control links of ``run_id`` in this namespace (of every run if ``None``)."""
    if not have_ip():
        return []
    links = []
    for line in ip(["-o", "link", "show", "type", "veth"], check=False).splitlines():
        parts = line.split(":", 2)
        if len(parts) < 2:
            continue
        name = parts[1].strip().split("@", 1)[0]
        if _matches(_LINK, name, run_id):
            links.append(name)
    return links


def kill_run_processes(run_id: str | None) -> list[int]:
    """SIGKILL every process carrying ``RIFT_RUN_ID`` (= ``run_id`` unless ``None``)."""
    own = {os.getpid(), os.getppid()}
    wanted = f"{RUN_ID_ENV}={run_id}".encode() if run_id else f"{RUN_ID_ENV}=".encode()
    killed = []
    try:
        entries = list(Path("/proc").iterdir())
    except OSError:
        return []
    for entry in entries:
        if not entry.name.isdigit() or int(entry.name) in own:
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        hit = (
            any(var == wanted for var in environ)
            if run_id
            else any(var.startswith(wanted) for var in environ)
        )
        if hit:
            try:
                os.kill(int(entry.name), signal.SIGKILL)
            except ProcessLookupError:
                continue
            killed.append(int(entry.name))
    return killed


def _namespace_pids(namespace: str) -> list[int]:
    out = ip(["netns", "pids", namespace], check=False)
    return [int(tok) for tok in out.split() if tok.isdigit()]


def heal(run_id: str | None) -> HealReport:
    """Kill the processes and delete the namespaces and links of ``run_id``."""
    if run_id is not None:
        validate_run_id(run_id)
    processes = kill_run_processes(run_id)
    namespaces = run_namespaces(run_id)
    for namespace in namespaces:
        # Anything running in a namespace of ours is ours, whether or not it carries
        # the variable (e.g. started with a bare `ip netns exec`).
        for pid in _namespace_pids(namespace):
            if pid == os.getpid():
                continue
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            processes.append(pid)
    links = run_links(run_id)
    for link in links:
        ip(["link", "del", link], check=False)
    for namespace in namespaces:
        ip(["netns", "del", namespace], check=False)
    left = [n for n in run_namespaces(run_id) if n in namespaces]
    left += [link for link in run_links(run_id) if link in links]
    if left:
        raise RemoteError(f"could not remove {', '.join(left)}; heal needs root")
    # Imported here: the docker backend is optional and imports this module.
    from rift_chaos.remote.docker import heal_docker

    containers, networks = heal_docker(run_id)
    return HealReport(
        processes=tuple(sorted(set(processes))),
        namespaces=tuple(namespaces),
        links=tuple(links),
        containers=tuple(containers),
        networks=tuple(networks),
    )
