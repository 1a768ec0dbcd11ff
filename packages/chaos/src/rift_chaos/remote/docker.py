"""The ``docker`` backend: one container per node, through the Docker SDK.

Topology of run ``R`` with nodes n1..nN::

    network rift-R      bridge riftdR, subnet 10.214.X.0/24, internal (no route out)
    container rift-R-n1 hostname n1, 10.214.X.1     ─┐
    container rift-R-n2 hostname n2, 10.214.X.2     ─┤ bridge riftdR
    ...                                              │
    this machine        10.214.X.254 (the gateway)  ─┘

Every container and the network carry the label ``rift.run_id=R``, so
:func:`heal_docker` (called by ``chaos heal``) removes them from the run id alone.
Containers run ``sleep infinity`` under Docker's ``--init`` (which reaps orphaned
daemons), with ``NET_ADMIN`` so that partition rules go into *each container's own*
iptables; IPv6 is off inside them. The network is ``internal`` and masquerade is
off: traffic flows only among the run's containers and this host, which reaches
them on their bridge addresses. The /24 is chosen to overlap no route of this
machine and no other Docker network.

The image is ``rift-node`` (Debian 12, python3 3.11, iproute2, iptables, procps,
faketime), built locally by :func:`~rift_chaos.remote._docker_image.ensure_image`.

How the system under test gets in: by default the control process's own Python
(``sys.base_prefix``), its virtualenv (``sys.prefix``) and every directory on
``sys.path`` are bind-mounted **read-only at the same paths**, so ``sys.executable``
and the workspace's editable packages work unchanged inside the node (the image is
the same Debian 12 as a typical control machine; ``mounts=()`` turns this off, and a
System can always ``upload`` what it needs instead). Each node's files live under
:attr:`DockerRemote.workdir` (``/rift``) inside its own container.

Commands run with ``exec`` in the container (see ``_docker_exec.py``); pids in
:class:`~rift_chaos.remote.Daemon` are pids inside the container.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import posixpath
import sys
import tarfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rift_chaos.errors import BackendUnavailable, RemoteError
from rift_chaos.remote._cluster import ClusterBase
from rift_chaos.remote._docker_daemon import docker_unavailable, ensure_daemon, try_client
from rift_chaos.remote._docker_exec import ExecRemote
from rift_chaos.remote._docker_image import ensure_image
from rift_chaos.remote._ip import have_ip, ip
from rift_chaos.remote._protocol import Node

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

__all__ = [
    "LABEL",
    "DockerCluster",
    "DockerRemote",
    "default_mounts",
    "docker_available",
    "heal_docker",
]

#: The label every container and network of a run carries, set to the run id.
LABEL = "rift.run_id"
WORKDIR = "/rift"
_GATEWAY_HOST = 254
_MAX_NODES = 250
# Exec calls that outlive their timeout are abandoned to a daemon thread; this is
# the HTTP timeout of the client they use, so even those end eventually.
_EXEC_HTTP_TIMEOUT = 24 * 3600


def docker_available() -> str | None:
    """``None`` if the docker backend can run here, else the reason it cannot."""
    return docker_unavailable()


def network_name(run_id: str) -> str:
    return f"rift-{run_id}"


def container_name(run_id: str, node: str) -> str:
    return f"rift-{run_id}-{node}"


def bridge_name(run_id: str) -> str:
    """The Linux bridge of the run's network (at most 15 bytes: riftd + 10)."""
    return f"riftd{run_id}"


def default_mounts() -> tuple[str, ...]:
    """The control process's Python, virtualenv and ``sys.path`` directories, with
    any path under another one dropped."""
    candidates = [sys.base_prefix, sys.prefix, *sys.path]
    paths = sorted(
        {str(Path(p).resolve()) for p in candidates if p and Path(p).is_dir()},
        key=len,
    )
    kept: list[str] = []
    for path in paths:
        if _is_system_path(path) or any(
            path == k or path.startswith(k.rstrip("/") + "/") for k in kept
        ):
            continue
        kept.append(path)
    return tuple(sorted(kept))


# Never mounted over the image's own: a control Python living in /usr (Debian's
# python3) is the image's python3 already.
_SYSTEM_DIRS = (
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/etc",
    "/var",
    "/proc",
    "/sys",
    "/dev",
    "/run",
    "/boot",
)


def _is_system_path(path: str) -> bool:
    return path == "/" or any(path == d or path.startswith(d + "/") for d in _SYSTEM_DIRS)


class DockerRemote(ExecRemote):
    """A node in its own container; has the Firewall ability."""

    def __init__(
        self, *, node: Node, run_id: str, container: str, client: docker.DockerClient
    ) -> None:
        super().__init__(node=node, workdir=WORKDIR, run_id=run_id)
        self.container = container
        self._client = client

    def _container(self) -> Container:
        import docker.errors

        try:
            return self._client.containers.get(self.container)
        except docker.errors.NotFound:
            raise RemoteError(f"on {self.node.name}: container {self.container} is gone") from None
        except docker.errors.DockerException as exc:
            raise RemoteError(f"on {self.node.name}: docker: {exc}") from exc

    def _exec(
        self, argv: Sequence[str], *, env: Mapping[str, str], cwd: str, timeout: float
    ) -> tuple[int, bytes, bytes]:
        import docker.errors

        api = self._client.api
        outcome: list[Any] = []

        def call() -> None:
            try:
                exec_id = api.exec_create(
                    self.container, list(argv), environment=dict(env), workdir=cwd
                )["Id"]
                out, err = api.exec_start(exec_id, demux=True)
                code = api.exec_inspect(exec_id)["ExitCode"]
                outcome.append((code, out or b"", err or b""))
            except docker.errors.NotFound:
                outcome.append(
                    RemoteError(f"on {self.node.name}: container {self.container} is gone")
                )
            except (docker.errors.DockerException, OSError) as exc:
                outcome.append(RemoteError(f"on {self.node.name}: docker exec: {exc}"))

        worker = threading.Thread(target=call, name=f"docker-exec-{self.container}", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            raise TimeoutError
        result = outcome[0]
        if isinstance(result, RemoteError):
            raise result
        code, out, err = result
        if code is None:  # docker reports no code if the exec could not start
            raise RemoteError(f"on {self.node.name}: docker exec of {argv[0]!r} did not start")
        return int(code), out, err

    def _put(self, path: str, data: bytes, *, mode: int = 0o644) -> None:
        import docker.errors

        directory, name = posixpath.split(path)
        tmp = posixpath.join(directory, f".{name}.tmp")
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo(tmp.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), mode, int(time.time())
            tar.addfile(info, io.BytesIO(data))
        try:
            # Extracting at / creates the missing parent directories.
            self._container().put_archive("/", buffer.getvalue())
        except docker.errors.DockerException as exc:
            raise RemoteError(f"on {self.node.name}: cannot write {path}: {exc}") from exc
        code, _, err = self._exec(("mv", "-f", tmp, path), env={}, cwd="/", timeout=30.0)
        if code != 0:
            raise RemoteError(
                f"on {self.node.name}: cannot write {path}: {err.decode(errors='replace').strip()}"
            )

    def _get(self, path: str) -> bytes:
        import docker.errors

        try:
            stream, _ = self._container().get_archive(path)
            raw = b"".join(stream)
        except docker.errors.NotFound:
            raise RemoteError(f"on {self.node.name}: no such file {path}") from None
        except docker.errors.DockerException as exc:
            raise RemoteError(f"on {self.node.name}: cannot read {path}: {exc}") from exc
        with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
            member = tar.next()
            extracted = tar.extractfile(member) if member is not None and member.isfile() else None
            if extracted is None:
                raise RemoteError(f"on {self.node.name}: {path} is not a regular file")
            return extracted.read()


def _exec_checked(container: Container, argv: list[str]) -> None:
    code, output = container.exec_run(argv, workdir="/")
    if code not in (0, 2):  # 2: no default route to delete
        raise RemoteError(f"in {container.name}: {' '.join(argv)} exited {code}: {output!r}")


def _used_networks(client: docker.DockerClient) -> list[ipaddress.IPv4Network]:
    used: list[ipaddress.IPv4Network] = []
    if have_ip():
        for args in (["-4", "-o", "addr", "show"], ["-4", "route", "show", "table", "all"]):
            for line in ip(args, check=False).splitlines():
                for token in line.split():
                    if "." not in token:
                        continue
                    try:
                        used.append(ipaddress.IPv4Network(token, strict=False))
                    except ValueError:
                        continue
    for network in client.networks.list():
        for config in (network.attrs.get("IPAM") or {}).get("Config") or []:
            try:
                net = ipaddress.ip_network(config.get("Subnet", ""), strict=False)
            except ValueError:
                continue
            if isinstance(net, ipaddress.IPv4Network):
                used.append(net)
    return used


def _pick_subnet(run_id: str, used: Iterable[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
    """A /24 in 10.214.0.0/16 that overlaps no route, address or Docker network."""
    taken = list(used)
    start = hashlib.sha256(run_id.encode()).digest()[0]
    for k in range(256):
        candidate = ipaddress.IPv4Network(f"10.214.{(start + k) % 256}.0/24")
        if not any(candidate.overlaps(net) for net in taken):
            return candidate
    raise BackendUnavailable("no free /24 in 10.214.0.0/16 for the docker backend")


class DockerCluster(ClusterBase[DockerRemote]):
    """Cluster of ``nodes`` containers on a private network, labelled by run id.

    The node addresses depend on the /24 picked at :meth:`setup` (it asks the
    daemon which subnets are taken), so :attr:`nodes` is empty until then.
    ``image`` overrides the built ``rift-node`` image; ``mounts`` the read-only
    bind mounts (default :func:`default_mounts`).
    """

    def __init__(
        self,
        *,
        nodes: int,
        run_id: str | None = None,
        image: str | None = None,
        mounts: Sequence[str] | None = None,
    ) -> None:
        if not 1 <= nodes <= _MAX_NODES:
            raise ValueError(f"nodes must be between 1 and {_MAX_NODES}, got {nodes}")
        reason = docker_available()
        if reason:
            raise BackendUnavailable(reason)
        super().__init__(run_id=run_id)
        self._count = nodes
        self._image = image
        self._mounts = tuple(default_mounts() if mounts is None else mounts)
        self.subnet: ipaddress.IPv4Network | None = None
        self._clients: list[docker.DockerClient] = []

    def setup(self) -> None:
        import docker
        import docker.errors
        import docker.types

        client = ensure_daemon()
        self._clients.append(client)
        image = self._image or ensure_image(client)
        if client.containers.list(all=True, filters={"label": f"{LABEL}={self._run_id}"}):
            raise BackendUnavailable(
                f"run {self._run_id} already has containers; run `chaos heal --run-id "
                f"{self._run_id}` first"
            )
        try:
            try:
                self._create(client, image)
            except docker.errors.DockerException as exc:
                raise BackendUnavailable(f"docker: {exc}") from exc
        except BaseException:
            self.teardown()
            raise

    def _create(self, client: docker.DockerClient, image: str) -> None:
        import docker
        import docker.types

        labels = {LABEL: self._run_id}
        network = network_name(self._run_id)
        exec_client = docker.from_env(timeout=_EXEC_HTTP_TIMEOUT)
        self._clients.append(exec_client)
        self.subnet = _pick_subnet(self._run_id, _used_networks(client))
        hosts = list(self.subnet.hosts())
        client.networks.create(
            network,
            driver="bridge",
            internal=True,
            labels=labels,
            ipam=docker.types.IPAMConfig(
                pool_configs=[
                    docker.types.IPAMPool(
                        subnet=str(self.subnet), gateway=str(hosts[_GATEWAY_HOST - 1])
                    )
                ]
            ),
            options={
                "com.docker.network.bridge.name": bridge_name(self._run_id),
                "com.docker.network.bridge.enable_ip_masquerade": "false",
            },
        )
        nodes = tuple(
            Node(name=f"n{i}", host=str(hosts[i - 1]), index=i) for i in range(1, self._count + 1)
        )
        peers = {n.name: n.host for n in nodes}
        for node in nodes:
            name = container_name(self._run_id, node.name)
            container = client.containers.create(
                image,
                ["sleep", "infinity"],
                name=name,
                hostname=node.name,
                labels=labels,
                init=True,
                cap_add=["NET_ADMIN"],
                sysctls={
                    "net.ipv6.conf.all.disable_ipv6": "1",
                    "net.ipv6.conf.default.disable_ipv6": "1",
                },
                extra_hosts=peers,
                network=network,
                networking_config={
                    network: client.api.create_endpoint_config(ipv4_address=node.host)
                },
                volumes={path: {"bind": path, "mode": "ro"} for path in self._mounts},
                working_dir=WORKDIR,  # Docker creates it
                detach=True,
            )
            container.start()
            # Docker gives even an internal network's containers a default route via
            # this host; drop it so nothing is ever routed off the run's /24.
            _exec_checked(container, ["ip", "-4", "route", "del", "default"])
            remote = DockerRemote(
                node=node, run_id=self._run_id, container=name, client=exec_client
            )
            self._remotes[node.name] = remote
        self._nodes = nodes

    def teardown(self) -> None:
        heal_docker(self._run_id)
        # Remotes handed out keep their (closed) client: a later call on one is a
        # RemoteError, and alive() is False, as for a node that is gone.
        for client in self._clients:
            client.close()
        self._clients.clear()


def heal_docker(run_id: str | None) -> tuple[list[str], list[str]]:
    """Remove the containers, then the networks, labelled with ``run_id`` (with any
    run id if ``None``). Never starts a daemon: none running means nothing to heal.
    Returns the names removed."""
    client = try_client(timeout=30.0)
    if client is None:
        return [], []
    selector = {"label": f"{LABEL}={run_id}" if run_id else LABEL}
    try:
        return _remove_labelled(client, selector, run_id)
    finally:
        client.close()


def _remove_labelled(
    client: docker.DockerClient, selector: dict[str, str], run_id: str | None
) -> tuple[list[str], list[str]]:
    import docker.errors

    containers, networks = [], []
    try:
        for container in client.containers.list(all=True, filters=selector):
            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                continue
            containers.append(container.name or container.id or "")
        for network in client.networks.list(filters=selector):
            try:
                network.remove()
            except docker.errors.NotFound:
                continue
            networks.append(network.name or network.id or "")
    except docker.errors.DockerException as exc:
        raise RemoteError(f"could not remove docker objects of run {run_id}: {exc}") from exc
    return sorted(containers), sorted(networks)
