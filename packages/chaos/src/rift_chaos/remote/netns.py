"""The ``netns`` backend: one Linux network namespace per node, on this machine.

Topology of run ``R`` with nodes n1..nN on a private /24 ``10.213.X.0/24``::

    namespace rift-R-n1   eth0 10.213.X.1/24 ──┐
    namespace rift-R-n2   eth0 10.213.X.2/24 ──┤  namespace rift-R-br
    ...                                        ├─ bridge br0 (ports n1..nN, ctl)
    control (this ns)     rift<R> 10.213.X.254/24 ┘

Safety invariants:

- Addresses exist only on these links; node namespaces have no default route, so
  nothing routes off the machine. The bridge forwards frames at layer 2 only.
- The only thing added to the machine's own namespace is the control link
  ``rift<R>`` with one address (and the kernel's connected route for that /24, which
  goes when the link goes). No iptables rule, forwarding or NAT is ever added here;
  partition rules live inside the node namespaces.
- The /24 is chosen so it overlaps no address or route already on the machine.
- Every name carries the run id, so :func:`~rift_chaos.remote.heal.heal` finds it all.

Commands run as ``ip netns exec rift-R-nI ARGV``; the filesystem is shared, so each
node has its own work directory, like the ``local`` backend.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from rift_chaos.errors import BackendUnavailable
from rift_chaos.remote._cluster import ClusterBase
from rift_chaos.remote._ip import have_ip, ip
from rift_chaos.remote._process import ProcessRemote
from rift_chaos.remote._protocol import CommandResult, Node
from rift_chaos.remote.heal import bridge_namespace, control_link, heal, node_namespace

__all__ = ["NetnsCluster", "NetnsRemote", "netns_available"]

_CONTROL_HOST = 254
_MAX_NODES = 250


def netns_available() -> str | None:
    """``None`` if this machine can run the netns backend, else the reason it cannot."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "the netns backend needs root (network namespaces, veth links, iptables)"
    if not have_ip():
        return "the netns backend needs iproute2's `ip` (apt-get install iproute2)"
    if shutil.which("iptables") is None:
        return "the netns backend needs `iptables` (apt-get install iptables)"
    return None


class NetnsRemote(ProcessRemote):
    """A node in its own network namespace; has the Firewall ability."""

    def __init__(self, *, node: Node, workdir: Path, run_id: str, namespace: str) -> None:
        super().__init__(
            node=node, workdir=workdir, run_id=run_id, prefix=("ip", "netns", "exec", namespace)
        )
        self.namespace = namespace

    def iptables(self, args: Sequence[str], *, check: bool = True) -> CommandResult:
        return self.run(("iptables", "-w", "10", *args), check=check, timeout=30.0)


def _pick_subnet(run_id: str) -> ipaddress.IPv4Network:
    """A /24 in 10.213.0.0/16 that overlaps nothing configured on this machine."""
    used = []
    for args in (["-4", "-o", "addr", "show"], ["-4", "route", "show", "table", "all"]):
        for line in ip(args, check=False).splitlines():
            for token in line.split():
                if "." not in token:  # metrics and table ids are numbers, not addresses
                    continue
                try:
                    used.append(ipaddress.ip_network(token, strict=False))
                except ValueError:
                    continue
    start = hashlib.sha256(run_id.encode()).digest()[0]
    for k in range(256):
        candidate = ipaddress.IPv4Network(f"10.213.{(start + k) % 256}.0/24")
        if not any(candidate.overlaps(net) for net in used if net.version == 4):
            return candidate
    raise BackendUnavailable("no free /24 in 10.213.0.0/16 for the netns backend")


def _disable_ipv6(namespace: str) -> None:
    """Turn IPv6 off inside a node: partitions are IPv4 rules, so no IPv6 path may exist.

    Best effort: a kernel without IPv6 has nothing to turn off.
    """
    keys = ("net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
    subprocess.run(
        ("ip", "netns", "exec", namespace, "sysctl", "-qw", *keys),
        capture_output=True,
        timeout=30,
        check=False,
    )


class NetnsCluster(ClusterBase[NetnsRemote]):
    """Cluster of ``nodes`` network namespaces joined by a bridge, named by run id."""

    def __init__(
        self,
        *,
        nodes: int,
        run_id: str | None = None,
        base: Path | None = None,
        keep_files: bool = False,
    ) -> None:
        if not 1 <= nodes <= _MAX_NODES:
            raise ValueError(f"nodes must be between 1 and {_MAX_NODES}, got {nodes}")
        reason = netns_available()
        if reason:
            raise BackendUnavailable(reason)
        super().__init__(run_id=run_id)
        self._root = (base or Path(tempfile.gettempdir())) / f"rift-{self._run_id}"
        self._keep_files = keep_files
        self.subnet = _pick_subnet(self._run_id)
        hosts = list(self.subnet.hosts())
        self._nodes = tuple(
            Node(name=f"n{i}", host=str(hosts[i - 1]), index=i) for i in range(1, nodes + 1)
        )
        self.control_address = str(hosts[_CONTROL_HOST - 1])
        self._remotes = {
            node.name: NetnsRemote(
                node=node,
                workdir=self._root / node.name,
                run_id=self._run_id,
                namespace=node_namespace(self._run_id, node.name),
            )
            for node in self._nodes
        }

    @property
    def root(self) -> Path:
        return self._root

    def setup(self) -> None:
        bridge = bridge_namespace(self._run_id)
        if Path("/run/netns", bridge).exists():
            raise BackendUnavailable(
                f"run {self._run_id} already has namespaces; run `chaos heal --run-id "
                f"{self._run_id}` first"
            )
        prefix = self.subnet.prefixlen
        try:
            ip(["netns", "add", bridge])
            ip(["-n", bridge, "link", "set", "lo", "up"])
            ip(["-n", bridge, "link", "add", "br0", "type", "bridge"])
            ip(["-n", bridge, "link", "set", "br0", "up"])
            for node in self._nodes:
                ns = node_namespace(self._run_id, node.name)
                ip(["netns", "add", ns])
                ip(["-n", ns, "link", "set", "lo", "up"])
                veth = ["type", "veth", "peer", "name", "eth0", "netns", ns]
                ip(["-n", bridge, "link", "add", node.name, *veth])
                ip(["-n", bridge, "link", "set", node.name, "master", "br0", "up"])
                ip(["-n", ns, "addr", "add", f"{node.host}/{prefix}", "dev", "eth0"])
                ip(["-n", ns, "link", "set", "eth0", "up"])
                _disable_ipv6(ns)
                Path(self._remotes[node.name].workdir).mkdir(parents=True, exist_ok=True)
            link = control_link(self._run_id)
            ip(["link", "add", link, "type", "veth", "peer", "name", "ctl", "netns", bridge])
            ip(["-n", bridge, "link", "set", "ctl", "master", "br0", "up"])
            ip(["addr", "add", f"{self.control_address}/{prefix}", "dev", link])
            ip(["link", "set", link, "up"])
        except BaseException:
            self.teardown()
            raise

    def teardown(self) -> None:
        for remote in self._remotes.values():
            remote.kill_all()
        heal(self._run_id)
        if not self._keep_files:
            shutil.rmtree(self._root, ignore_errors=True)
