"""The ``ssh`` backend: existing hosts, reached with paramiko.

An :class:`SshCluster` creates nothing: it connects to the hosts it is given (name,
address, port, user, private key) and, at teardown, removes what the run left on
them (see :meth:`SshCluster.heal`): processes carrying ``RIFT_RUN_ID=<runid>``
(found through ``/proc/*/environ``), the ``RIFT-<runid>`` iptables chain and the
jump to it, and the run's work directory ``/tmp/rift-<runid>/<node>``.

Host keys are verified by default, against ``known_hosts`` (a file in OpenSSH
format; ``~/.ssh/known_hosts`` if none is given) or a host's explicit ``host_key``
(``"ssh-ed25519 AAAA..."``). ``accept_unknown_host_keys=True`` turns verification
off (paramiko's AutoAddPolicy) and is meant for throwaway test rigs only.

Commands run as ``sh`` scripts over exec channels (see ``_docker_exec.py``, shared
with docker); daemons are started with ``setsid`` (no pty is ever requested, so no
hangup reaches them) and tracked by pidfile. Partition rules run ``iptables``
over ssh, so the user must be root (or iptables otherwise permitted).

For ``chaos run --backend ssh`` the hosts come from the YAML (or JSON) file named by
``$RIFT_SSH_HOSTS``::

    known_hosts: ~/.ssh/known_hosts     # optional
    accept_unknown_host_keys: false     # optional
    hosts:
      - {name: n1, address: 10.0.0.11, user: root, key: ~/.ssh/rift_ed25519}
      - {name: n2, address: 10.0.0.12, port: 2222, user: root, key: ~/.ssh/rift_ed25519}
"""

from __future__ import annotations

import io
import os
import posixpath
import select
import shlex
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rift_chaos.errors import BackendUnavailable, RemoteError
from rift_chaos.remote._cluster import ClusterBase
from rift_chaos.remote._docker_exec import ExecRemote
from rift_chaos.remote._protocol import Node

if TYPE_CHECKING:
    import paramiko

__all__ = ["HOSTS_ENV", "SshCluster", "SshHost", "SshRemote", "load_hosts"]

#: Names the hosts file for ``make_cluster("ssh", ...)``.
HOSTS_ENV = "RIFT_SSH_HOSTS"
_CONNECT_TIMEOUT = 15.0

# heal RUNID: kill the run's processes, then remove the jump to the run's chain and the chain.
_HEAL = r"""
run=$1
# This script runs without RIFT_RUN_ID, so it never matches itself.
for f in $(grep -lxzF "RIFT_RUN_ID=$run" /proc/[0-9]*/environ 2>/dev/null); do
    p=${f#/proc/}; p=${p%/environ}
    kill -s KILL "$p" 2>/dev/null && echo "process $p"
done
if command -v iptables >/dev/null 2>&1; then
    i=0
    while [ "$i" -lt 20 ] && iptables -w 10 -D INPUT -m comment --comment "rift-$run" \
            -j "RIFT-$run" 2>/dev/null; do
        i=$((i+1))
    done
    iptables -w 10 -F "RIFT-$run" 2>/dev/null && iptables -w 10 -X "RIFT-$run" && \
        echo "chain RIFT-$run"
fi
rm -rf "/tmp/rift-$run"
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class SshHost:
    """One host: ``key`` is a private key file; ``host_key`` pins the host's key."""

    name: str
    address: str
    port: int = 22
    user: str = "root"
    key: str | None = None
    host_key: str | None = None


def load_hosts(path: Path) -> tuple[list[SshHost], dict[str, Any]]:
    """Hosts and cluster options from a hosts file (format in the module docstring)."""
    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise BackendUnavailable(f"cannot read ssh hosts file {path}: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("hosts"), list):
        raise BackendUnavailable(f"{path}: hosts: must be a list of hosts")
    hosts = []
    for i, entry in enumerate(doc["hosts"]):
        if not isinstance(entry, dict) or "address" not in entry:
            raise BackendUnavailable(f"{path}: hosts[{i}]: needs at least an address")
        known = {"name", "address", "port", "user", "key", "host_key"}
        if set(entry) - known:
            raise BackendUnavailable(
                f"{path}: hosts[{i}]: unknown field {sorted(set(entry) - known)[0]!r}"
            )
        hosts.append(
            SshHost(
                name=str(entry.get("name", f"n{i + 1}")),
                address=str(entry["address"]),
                port=int(entry.get("port", 22)),
                user=str(entry.get("user", "root")),
                key=os.path.expanduser(str(entry["key"])) if entry.get("key") else None,
                host_key=entry.get("host_key"),
            )
        )
    options = {k: v for k, v in doc.items() if k != "hosts"}
    return hosts, options


class SshRemote(ExecRemote):
    """A host reached over one paramiko connection; has the Firewall ability."""

    def __init__(self, *, node: Node, run_id: str, client: paramiko.SSHClient) -> None:
        super().__init__(node=node, workdir=f"/tmp/rift-{run_id}/{node.name}", run_id=run_id)
        self._client = client
        self._sftp: paramiko.SFTPClient | None = None
        self._lock = threading.Lock()
        # Channels may be used from many threads at once; the one SFTP session is not.
        self._sftp_lock = threading.Lock()

    def _transport(self) -> paramiko.Transport:
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise RemoteError(f"on {self.node.name}: the ssh connection is closed")
        return transport

    def _exec(
        self, argv: Sequence[str], *, env: Mapping[str, str], cwd: str, timeout: float
    ) -> tuple[int, bytes, bytes]:
        import paramiko

        assignments = [f"{k}={v}" for k, v in env.items()]
        command = f"cd {shlex.quote(cwd)} && exec {shlex.join(['env', *assignments, *argv])}"
        try:
            channel = self._transport().open_session(timeout=_CONNECT_TIMEOUT)
            channel.exec_command(command)
            channel.shutdown_write()
        except (paramiko.SSHException, OSError) as exc:
            raise RemoteError(f"on {self.node.name}: ssh: {exc}") from exc
        out, err = bytearray(), bytearray()
        deadline = time.monotonic() + timeout
        try:
            while True:
                if channel.recv_ready():
                    out += channel.recv(65536)
                elif channel.recv_stderr_ready():
                    err += channel.recv_stderr(65536)
                elif channel.exit_status_ready():
                    # The server sends all data before the exit status.
                    break
                else:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError
                    select.select([channel], [], [], min(remaining, 0.5))
            code = channel.recv_exit_status()
        except TimeoutError:
            raise  # an OSError too, but the caller's to handle: it kills the command
        except (paramiko.SSHException, OSError) as exc:
            raise RemoteError(f"on {self.node.name}: ssh: {exc}") from exc
        finally:
            channel.close()
        if code == -1:
            raise RemoteError(f"on {self.node.name}: ssh: no exit status for {argv[0]!r}")
        return code, bytes(out), bytes(err)

    def _sftp_client(self) -> paramiko.SFTPClient:
        with self._lock:
            if self._sftp is None:
                self._sftp = self._client.open_sftp()
            return self._sftp

    def _put(self, path: str, data: bytes, *, mode: int = 0o644) -> None:
        import paramiko

        directory, name = posixpath.split(path)
        tmp = posixpath.join(directory, f".{name}.tmp")
        code, _, err = self._exec(("mkdir", "-p", directory), env={}, cwd="/", timeout=30.0)
        if code != 0:
            raise RemoteError(
                f"on {self.node.name}: cannot write {path}: {err.decode(errors='replace').strip()}"
            )
        try:
            sftp = self._sftp_client()
            with self._sftp_lock:
                sftp.putfo(io.BytesIO(data), tmp, confirm=False)
                sftp.chmod(tmp, mode)
                sftp.posix_rename(tmp, path)
        except (paramiko.SSHException, OSError) as exc:
            raise RemoteError(f"on {self.node.name}: cannot write {path}: {exc}") from exc

    def _get(self, path: str) -> bytes:
        import paramiko

        buffer = io.BytesIO()
        try:
            sftp = self._sftp_client()
            with self._sftp_lock:
                sftp.getfo(path, buffer)
        except (paramiko.SSHException, OSError) as exc:
            raise RemoteError(f"on {self.node.name}: cannot read {path}: {exc}") from exc
        return buffer.getvalue()

    def heal(self) -> str:
        """Kill the run's processes and remove its chain and files on this host."""
        code, out, err = self._exec(
            ("sh", "-c", _HEAL, "rift", self._run_id), env={}, cwd="/", timeout=120.0
        )
        if code != 0:
            raise RemoteError(
                f"on {self.node.name}: heal exited {code}: {err.decode(errors='replace').strip()}"
            )
        return out.decode("utf-8", "replace")

    def close(self) -> None:
        with self._lock:
            if self._sftp is not None:
                self._sftp.close()
                self._sftp = None
        self._client.close()


class SshCluster(ClusterBase[SshRemote]):
    """The given hosts as nodes n1..nN (named as given); see the module docstring."""

    def __init__(
        self,
        *,
        hosts: Sequence[SshHost],
        run_id: str | None = None,
        known_hosts: Path | None = None,
        accept_unknown_host_keys: bool = False,
    ) -> None:
        if not hosts:
            raise ValueError("hosts must name at least one host")
        names = [h.name for h in hosts]
        if len(set(names)) != len(names):
            raise ValueError(f"host names must be distinct, got {names}")
        try:
            import paramiko  # noqa: F401
        except ImportError:
            raise BackendUnavailable(
                "the ssh backend needs the `paramiko` Python package (pip install paramiko)"
            ) from None
        super().__init__(run_id=run_id)
        self._hosts = tuple(hosts)
        self._known_hosts = known_hosts
        self._accept_unknown = accept_unknown_host_keys
        self._nodes = tuple(
            Node(name=h.name, host=h.address, index=i) for i, h in enumerate(hosts, start=1)
        )

    @classmethod
    def from_env(cls, *, nodes: int, run_id: str | None = None) -> SshCluster:
        """The first ``nodes`` hosts of the file named by ``$RIFT_SSH_HOSTS``."""
        path = os.environ.get(HOSTS_ENV)
        if not path:
            raise BackendUnavailable(
                f"the ssh backend needs a hosts file: set {HOSTS_ENV}=/path/to/hosts.yaml"
            )
        hosts, options = load_hosts(Path(path))
        if len(hosts) < nodes:
            raise BackendUnavailable(f"{path} lists {len(hosts)} hosts; the run needs {nodes}")
        known = options.get("known_hosts")
        return cls(
            hosts=hosts[:nodes],
            run_id=run_id,
            known_hosts=Path(os.path.expanduser(str(known))) if known else None,
            accept_unknown_host_keys=bool(options.get("accept_unknown_host_keys", False)),
        )

    def _connect(self, host: SshHost) -> paramiko.SSHClient:
        import paramiko

        client = paramiko.SSHClient()
        if self._known_hosts is not None:
            try:
                client.load_host_keys(str(self._known_hosts))
            except OSError as exc:
                raise BackendUnavailable(
                    f"cannot read known_hosts {self._known_hosts}: {exc}"
                ) from exc
        else:
            client.load_system_host_keys()
        if host.host_key:
            kind, _, blob = host.host_key.strip().partition(" ")
            entry = host.address if host.port == 22 else f"[{host.address}]:{host.port}"
            key = paramiko.PKey.from_type_string(kind, _b64(blob.split()[0]))
            client.get_host_keys().add(entry, kind, key)
        if self._accept_unknown:
            client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        else:
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect(
                host.address,
                port=host.port,
                username=host.user,
                key_filename=host.key,
                timeout=_CONNECT_TIMEOUT,
                banner_timeout=_CONNECT_TIMEOUT,
                auth_timeout=_CONNECT_TIMEOUT,
                allow_agent=host.key is None,
                look_for_keys=host.key is None,
            )
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise BackendUnavailable(
                f"{host.name} ({host.address}): host key does not match known_hosts: {exc}"
            ) from exc
        except paramiko.SSHException as exc:
            client.close()
            hint = ""
            if "not found in known_hosts" in str(exc):
                hint = " (add it to known_hosts, or pin host_key)"
            raise BackendUnavailable(f"{host.name} ({host.address}): ssh: {exc}{hint}") from exc
        except OSError as exc:
            client.close()
            raise BackendUnavailable(
                f"{host.name} ({host.address}): cannot connect: {exc}"
            ) from exc
        return client

    def setup(self) -> None:
        try:
            for host, node in zip(self._hosts, self._nodes, strict=True):
                remote = SshRemote(node=node, run_id=self._run_id, client=self._connect(host))
                self._remotes[node.name] = remote
                remote.run(["mkdir", "-p", remote.workdir], cwd="/")
        except BaseException:
            self.teardown()
            raise

    def heal(self) -> list[str]:
        """Remove the run's processes, chain and files from every host; what was removed."""
        removed = []
        for remote in self._remotes.values():
            report = remote.heal()
            removed += [f"{remote.node.name}: {line}" for line in report.splitlines()]
        return removed

    def teardown(self) -> None:
        errors = []
        for remote in self._remotes.values():
            try:
                remote.heal()
            except RemoteError as exc:
                errors.append(str(exc))
        for remote in self._remotes.values():
            remote.close()
        self._remotes.clear()
        if errors:
            raise RemoteError(f"teardown of run {self._run_id}: {errors[0]}")


def _b64(text: str) -> bytes:
    import base64

    return base64.b64decode(text)
