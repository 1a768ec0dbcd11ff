"""A throwaway rig of real sshd servers, for testing and trying the ssh backend.

:class:`SshdRig` makes a :class:`~rift_chaos.remote.NetnsCluster` (its own run id)
and starts OpenSSH's ``sshd`` inside every node namespace, listening only on that
node's address (port 22 of *its own* namespace; the machine's sshd, its config and
its addresses are never touched). Keys are generated for the rig: one ed25519 host
key, and one client key authorised for root. It writes a ``known_hosts`` with the
host key for every address, so an :class:`~rift_chaos.remote.ssh.SshCluster` over
the rig verifies host keys exactly as it would against real hosts.

``sshd`` runs as a daemon of the netns cluster, so it carries the rig's run id and
goes with the rig's teardown (or ``chaos heal --run-id <rig run id>``). Root only.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from rift_chaos.errors import BackendUnavailable
from rift_chaos.remote._protocol import Node
from rift_chaos.remote._runid import new_run_id
from rift_chaos.remote.netns import NetnsCluster, netns_available
from rift_chaos.remote.ssh import SshCluster, SshHost, SshRemote

__all__ = ["SshRigCluster", "SshdRig", "sshd_rig_unavailable"]

_SSHD = "/usr/sbin/sshd"
_CONFIG = """\
ListenAddress {address}:22
HostKey {keys}/host_ed25519
PidFile {dir}/sshd.pid
AuthorizedKeysFile {keys}/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
MaxSessions 64
MaxStartups 64
Subsystem sftp internal-sftp
"""


def sshd_rig_unavailable() -> str | None:
    reason = netns_available()
    if reason:
        return reason
    if not Path(_SSHD).exists() or shutil.which("ssh-keygen") is None:
        return "the sshd rig needs OpenSSH (apt-get install openssh-server)"
    return None


class SshdRig:
    """``nodes`` namespaces each running sshd; :meth:`cluster` gives an SshCluster."""

    def __init__(self, *, nodes: int, base: Path | None = None) -> None:
        reason = sshd_rig_unavailable()
        if reason:
            raise BackendUnavailable(reason)
        self.hosts_cluster = NetnsCluster(nodes=nodes, run_id=new_run_id(), base=base)
        self._dir = Path(tempfile.mkdtemp(prefix="rift-sshd-", dir=base))
        self.keys = self._dir / "keys"
        self.known_hosts = self._dir / "known_hosts"
        self.client_key = self.keys / "client_ed25519"

    def _keygen(self, path: Path, comment: str) -> None:
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
            check=True,
            capture_output=True,
            timeout=30,
        )

    def setup(self) -> None:
        try:
            self.keys.mkdir(parents=True)
            self._keygen(self.keys / "host_ed25519", "rift-rig-host")
            self._keygen(self.client_key, "rift-rig-client")
            shutil.copyfile(self.keys / "client_ed25519.pub", self.keys / "authorized_keys")
            host_pub = (self.keys / "host_ed25519.pub").read_text().split()
            # sshd refuses to start without its privilege-separation directory.
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
            self.hosts_cluster.setup()
            lines = []
            for node in self.hosts_cluster.nodes:
                remote = self.hosts_cluster.remote(node.name)
                config = Path(remote.workdir) / "sshd_config"
                config.write_text(
                    _CONFIG.format(address=node.host, keys=self.keys, dir=remote.workdir)
                )
                remote.start_daemon(
                    [_SSHD, "-D", "-e", "-f", str(config)], log="sshd.log", pidfile="sshd.pid.d"
                )
                lines.append(f"{node.host} {host_pub[0]} {host_pub[1]}")
            self.known_hosts.write_text("\n".join(lines) + "\n")
            for node in self.hosts_cluster.nodes:
                self._wait_listening(node.name)
        except BaseException:
            self.teardown()
            raise

    def _wait_listening(self, node: str) -> None:
        remote = self.hosts_cluster.remote(node)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if ":22 " in remote.run(["ss", "-Htln"], check=False).stdout:
                return
            time.sleep(0.05)
        log = (Path(remote.workdir) / "sshd.log").read_text(errors="replace")
        raise BackendUnavailable(f"sshd on {node} did not start: {log.strip()[-300:]}")

    def hosts(self) -> list[SshHost]:
        return [
            SshHost(name=n.name, address=n.host, user="root", key=str(self.client_key))
            for n in self.hosts_cluster.nodes
        ]

    def cluster(self, *, run_id: str | None = None) -> SshCluster:
        """An SshCluster over the rig, verifying host keys against the rig's known_hosts."""
        return SshCluster(hosts=self.hosts(), run_id=run_id, known_hosts=self.known_hosts)

    def teardown(self) -> None:
        self.hosts_cluster.teardown()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> SshdRig:
        self.setup()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.teardown()


class SshRigCluster:
    """An :class:`SshCluster` over its own :class:`SshdRig`: one Cluster that builds
    the rig at setup and removes it at teardown (the conformance suite's ``ssh``)."""

    def __init__(self, *, nodes: int, run_id: str | None = None, base: Path | None = None) -> None:
        self.rig = SshdRig(nodes=nodes, base=base)
        self._cluster = self.rig.cluster(run_id=run_id)

    @property
    def run_id(self) -> str:
        return self._cluster.run_id

    @property
    def nodes(self) -> tuple[Node, ...]:
        return self._cluster.nodes

    def remote(self, node: str) -> SshRemote:
        return self._cluster.remote(node)

    def setup(self) -> None:
        self.rig.setup()
        try:
            self._cluster.setup()
        except BaseException:
            self.rig.teardown()
            raise

    def teardown(self) -> None:
        try:
            self._cluster.teardown()
        finally:
            self.rig.teardown()

    def __enter__(self) -> SshRigCluster:
        self.setup()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.teardown()
