"""``broker cluster``: a whole cluster of ``broker serve`` processes on one machine.

For development, tests and benchmarks: every node is a real subprocess on
127.0.0.1 with its own Kafka port, cluster (controller) port, data directory and
log file, all under one directory::

    DIR/node-1/data   DIR/node-1/broker.log   ...

:class:`LocalCluster` starts, kills (SIGKILL), restarts and stops the nodes;
``broker cluster`` runs one in the foreground until Ctrl-C or SIGTERM, then stops
every node cleanly (SIGTERM each, a bounded wait, SIGKILL for stragglers). A node
that dies on its own is reported with the last lines of its log.

Ports: with ``base_port`` P, node i (1-based) serves Kafka on P+i-1 and its cluster
listener on P+100+i-1; without one, free ports are picked.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

from rift_broker.errors import BrokerError, ConfigError

__all__ = [
    "ClusterNodeProcess",
    "LocalCluster",
    "NodeDied",
    "add_cluster_command",
    "free_ports",
    "read_observations",
    "read_partition_log",
    "running_cluster",
    "wait_until",
]

HOST = "127.0.0.1"
_CONTROLLER_OFFSET = 100


class NodeDied(BrokerError):
    """A node of the local cluster exited on its own; the message has its log tail."""


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports that were free a moment ago on 127.0.0.1."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind((HOST, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


@dataclass(slots=True, kw_only=True)
class ClusterNodeProcess:
    """One ``broker serve`` subprocess of a :class:`LocalCluster`."""

    node_id: int
    port: int  # Kafka listener
    controller_port: int
    directory: Path
    extra_args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log_file: IO[bytes] | None = field(default=None, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def log_path(self) -> Path:
        return self.directory / "broker.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self, controllers: str) -> None:
        if self.running:
            raise ConfigError(f"node {self.node_id} is already running")
        self.directory.mkdir(parents=True, exist_ok=True)
        self._close_log()
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        command = [
            sys.executable,
            "-m",
            "rift_broker.cli",
            "serve",
            "--node-id",
            str(self.node_id),
            "--controllers",
            controllers,
            "--listen",
            self.bootstrap,
            "--data-dir",
            str(self.data_dir),
            *self.extra_args,
        ]
        # A new session: Ctrl-C in the terminal reaches `broker cluster` only, which
        # then stops the nodes in order instead of all of them racing at once.
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def signal(self, sig: int) -> None:
        if self.running and self.process is not None:
            self.process.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL, and reap."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait()
        self._close_log()

    def stop(self, *, timeout_s: float = 10.0, terminate: bool = True) -> int | None:
        """SIGTERM (unless already sent: a second one during the graceful shutdown
        kills the node), wait up to ``timeout_s``, then SIGKILL. The exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            if terminate:
                self.process.terminate()
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._close_log()
        return self.process.returncode

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


class LocalCluster:
    """``nodes`` ``broker serve`` processes on 127.0.0.1 under ``directory``.

    A context manager: leaving it stops every node (and kills stragglers), whatever
    happened inside."""

    def __init__(
        self,
        *,
        nodes: int = 3,
        directory: str | Path | None = None,
        base_port: int | None = None,
        session_timeout_ms: int = 6000,
        election_timeout_ms: int = 1000,
        replica_lag_time_max_ms: int = 10_000,
        extra_args: Sequence[str] = (),
    ) -> None:
        if nodes < 1:
            raise ConfigError("--nodes must be at least 1")
        if base_port is not None and not 1 <= base_port <= 65535 - _CONTROLLER_OFFSET - nodes:
            raise ConfigError(f"--base-port {base_port} leaves no room for {nodes} nodes")
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="rift-cluster-")
            directory = self._tmp.name
        self.directory = Path(directory).resolve()
        if base_port is None:
            ports = free_ports(2 * nodes)
            kafka, controller = ports[:nodes], ports[nodes:]
        else:
            kafka = [base_port + i for i in range(nodes)]
            controller = [base_port + _CONTROLLER_OFFSET + i for i in range(nodes)]
        args = (
            "--session-timeout-ms",
            str(session_timeout_ms),
            "--election-timeout-ms",
            str(election_timeout_ms),
            "--replica-lag-time-max-ms",
            str(replica_lag_time_max_ms),
            *extra_args,
        )
        self.nodes: dict[int, ClusterNodeProcess] = {
            i + 1: ClusterNodeProcess(
                node_id=i + 1,
                port=kafka[i],
                controller_port=controller[i],
                directory=self.directory / f"node-{i + 1}",
                extra_args=args,
            )
            for i in range(nodes)
        }

    @property
    def controllers(self) -> str:
        return ",".join(f"{n.node_id}@{HOST}:{n.controller_port}" for n in self.nodes.values())

    @property
    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.nodes.values())

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        for node in self.nodes.values():
            node.start(self.controllers)

    def restart(self, node_id: int) -> None:
        self.nodes[node_id].start(self.controllers)

    def kill(self, node_id: int) -> None:
        self.nodes[node_id].kill()

    def stop(self, *, timeout_s: float = 10.0) -> dict[int, int | None]:
        """SIGTERM every node, wait (bounded, shared), SIGKILL stragglers."""
        for node in self.nodes.values():
            node.signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        codes: dict[int, int | None] = {}
        for node_id, node in self.nodes.items():
            codes[node_id] = node.stop(
                timeout_s=max(0.0, deadline - time.monotonic()), terminate=False
            )
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        return codes

    def dead(self) -> list[ClusterNodeProcess]:
        """Nodes started and not running (exited by themselves, or killed)."""
        return [n for n in self.nodes.values() if n.process is not None and not n.running]

    def check_alive(self) -> None:
        for node in self.dead():
            raise NodeDied(
                f"node {node.node_id} exited with status {node.process and node.process.returncode}"
                f"; last lines of {node.log_path}:\n{log_tail(node.log_path)}"
            )

    def registered(self) -> bool:
        """Whether every running node's Metadata lists every node as a live broker."""
        from rift_client import ClientError, sync

        want = set(self.nodes)
        for node in self.nodes.values():
            if not node.running:
                return False
            try:
                with sync.Admin(node.bootstrap, request_timeout_ms=2000) as admin:
                    brokers, _ = admin.describe_cluster()
            except (ClientError, OSError, TimeoutError):
                return False
            if {b.node for b in brokers} != want:
                return False
        return True

    def wait_registered(self, *, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.registered():
            self.check_alive()
            if time.monotonic() > deadline:
                raise BrokerError(
                    f"not every node registered within {timeout_s:g}s; logs under {self.directory}"
                )
            time.sleep(0.2)

    def observations(self) -> list[dict[str, Any]]:
        """Every node's ``observe {...}`` facts (leader changes, high watermarks)."""
        facts: list[dict[str, Any]] = []
        for node in self.nodes.values():
            facts.extend(read_observations(node.log_path, node=node.node_id))
        return facts


@contextlib.contextmanager
def running_cluster(
    *, registered_within_s: float = 60.0, **settings: Any
) -> Iterator[LocalCluster]:
    """A :class:`LocalCluster` (``settings`` are its arguments), started, with every
    node registered; leaving the block SIGKILLs every node, whatever happened, so
    no process outlives a test (and it is quicker than a clean stop)."""
    cluster = LocalCluster(**settings)
    try:
        cluster.start()
        cluster.wait_registered(timeout_s=registered_within_s)
        yield cluster
    finally:
        for node in cluster.nodes.values():
            node.kill()


_T = TypeVar("_T")


def wait_until(
    what: str,
    cond: Callable[[], _T],
    *,
    within_s: float = 30.0,
    every_s: float = 0.1,
    explain: Callable[[], str] | None = None,
) -> _T:
    """Call ``cond`` until it returns something true, and return that.

    A call that raises counts as "not yet" (a node still starting, failing over or
    cut off). After ``within_s`` it raises AssertionError naming ``what``, followed
    by ``explain()`` if given.
    """
    deadline = time.monotonic() + within_s
    while True:
        try:
            value = cond()
        except Exception:  # asked again until the deadline
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            detail = f"\n{explain()}" if explain is not None else ""
            raise AssertionError(f"timed out after {within_s:g}s waiting for {what}{detail}")
        time.sleep(every_s)


def read_observations(path: Path, *, node: int) -> list[dict[str, Any]]:
    """The ``observe {...}`` lines of one node's log, each with ``"observer": node``."""
    facts: list[dict[str, Any]] = []
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return facts
    for line in text.splitlines():
        _, marker, payload = line.partition(" observe {")
        if marker:
            try:
                fact = json.loads("{" + payload)
            except ValueError:
                continue  # a line torn by SIGKILL
            facts.append({**fact, "observer": node})
    return facts


def read_partition_log(data_dir: Path, topic: str, partition: int) -> bytes:
    """Every batch of a stopped node's partition log from its log start offset, as
    stored (for comparing replicas)."""
    from rift_broker.log import LogConfig, PartitionLog
    from rift_broker.storage import OsStorage

    log = PartitionLog.open(
        str(data_dir / f"{topic}-{partition}"),
        config=LogConfig(),
        storage=OsStorage(),
        now_ms=time.time_ns() // 1_000_000,
    )
    try:
        if log.log_end_offset == log.log_start_offset:
            return b""
        return log.read(log.log_start_offset, max_bytes=1 << 30)
    finally:
        log.close()


# -- the `broker cluster` command -------------------------------------------------


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} must be at least 1")
    return number


def add_cluster_command(sub: Any) -> None:
    """Add ``cluster`` to the ``broker`` command's subparsers."""
    cmd = sub.add_parser(
        "cluster",
        help="run a whole local cluster for development",
        description=(
            "Start NODES `broker serve` processes on 127.0.0.1 (each a Raft controller and a "
            "broker), with data and logs under one directory; print how to reach them, wait "
            "until every node is registered, and run until Ctrl-C or SIGTERM, which stops every "
            "node cleanly (SIGTERM, bounded wait, then SIGKILL). Node i serves Kafka on "
            "BASE+i-1 and its cluster listener on BASE+100+i-1."
        ),
    )
    cmd.add_argument("--nodes", type=_positive, default=3, help="how many nodes (default 3)")
    cmd.add_argument(
        "--dir",
        type=Path,
        help="directory for every node's data and log (default: a new temporary directory, "
        "kept after exit)",
    )
    cmd.add_argument(
        "--base-port",
        type=_positive,
        default=9092,
        help="first Kafka port (default 9092); controllers from BASE+100",
    )
    cmd.add_argument(
        "--session-timeout-ms",
        type=_positive,
        default=6000,
        help="fence a node whose heartbeats lapse this long (default 6000)",
    )
    cmd.add_argument(
        "--election-timeout-ms", type=_positive, default=1000, help="Raft (default 1000)"
    )
    cmd.add_argument(
        "--replica-lag-time-max-ms",
        type=_positive,
        default=10_000,
        help="drop a lagging follower from the ISR after this long (default 10000)",
    )
    cmd.add_argument(
        "--startup-timeout-s",
        type=float,
        default=60.0,
        help="give up if not every node is registered by then (default 60)",
    )
    cmd.set_defaults(handler=run_cluster_command)


def run_cluster_command(args: argparse.Namespace) -> int:
    directory: Path = args.dir or Path(tempfile.mkdtemp(prefix="rift-cluster-"))
    cluster = LocalCluster(
        nodes=args.nodes,
        directory=directory,
        base_port=args.base_port,
        session_timeout_ms=args.session_timeout_ms,
        election_timeout_ms=args.election_timeout_ms,
        replica_lag_time_max_ms=args.replica_lag_time_max_ms,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        cluster.start()
        out = sys.stdout
        print(f"bootstrap servers: {cluster.bootstrap}", file=out)
        print(f"controllers:       {cluster.controllers}", file=out)
        print(f"data and logs:     {cluster.directory}/node-N/{{data,broker.log}}", file=out)
        for node in cluster.nodes.values():
            print(
                f"  node {node.node_id}: pid {node.pid} kafka {node.bootstrap} log {node.log_path}",
                file=out,
            )
        out.flush()
        deadline = time.monotonic() + args.startup_timeout_s
        ready = False
        while not stop.is_set():
            cluster.check_alive()
            if not ready:
                if cluster.registered():
                    ready = True
                    first = next(iter(cluster.nodes.values())).bootstrap
                    print(
                        f"all {len(cluster.nodes)} nodes registered; try: broker topics create "
                        f"T --partitions 3 --replication-factor {min(3, len(cluster.nodes))} "
                        f"--bootstrap-server {first}   (Ctrl-C stops the cluster)",
                        file=out,
                        flush=True,
                    )
                elif time.monotonic() > deadline:
                    raise BrokerError(
                        f"not every node registered within {args.startup_timeout_s:g}s; "
                        f"logs under {cluster.directory}"
                    )
            stop.wait(0.5)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        codes = cluster.stop()
        if stop.is_set():
            print(
                "stopped: "
                + ", ".join(f"node {n} exit {c}" for n, c in codes.items())
                + f"; data kept in {cluster.directory}",
                file=sys.stderr,
            )
    return 0


if __name__ == "__main__":  # pragma: no cover
    os.execvp(sys.executable, [sys.executable, "-m", "rift_broker.cli", "cluster", *sys.argv[1:]])
