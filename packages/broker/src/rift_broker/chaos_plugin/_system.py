"""How the toolkit runs the reference broker on a node.

Each node runs ``broker serve`` as one member of the cluster: the I-th node of the
cluster is broker node id ``I``, with its Kafka listener on port 9092 and its
cluster listener (Raft metadata quorum and replication) on port 9093 of the node's
address, both shifted by the node's port offset where nodes share an address. The
process runs under libfaketime when the machine has it, reading its offset from a
file in the node's work directory, so the clock nemesis can move the node's wall
clock (the broker's timers use the monotonic clock, which is left alone).
"""

from __future__ import annotations

import datetime
import json
import shutil
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rift_broker.chaos_plugin._client import BrokerClient
from rift_chaos.errors import ChaosError
from rift_chaos.nemesis.clock import faketime_env, write_offset
from rift_chaos.remote import Daemon, Node, Remote
from rift_chaos.system import SystemSettings
from rift_client import errors as client_errors
from rift_client.sync import Admin
from rift_client.types import NewTopic

KAFKA_PORT = 9092
CLUSTER_PORT = 9093
FAKETIME_FILE = "faketime"


def kafka_address(node: Node) -> str:
    return f"{node.host}:{KAFKA_PORT + node.port_offset}"


def _fact_time_ms(fact: Mapping[str, Any], line: str) -> int | None:
    """When a fact was recorded: the broker's monotonic clock (shared by every node
    on one kernel, and untouched by clock faults), else the log line's wall clock."""
    mono = fact.get("monotonic_ns")
    if isinstance(mono, int):
        return mono // 1_000_000
    return _log_time_ms(line)


def _log_time_ms(line: str) -> int | None:
    """The wall-clock time (ms since the epoch) of a ``broker serve`` log line."""
    try:
        stamp = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
    except ValueError:
        return None
    return int(stamp.replace(tzinfo=datetime.UTC).timestamp() * 1000)


def _broker_command() -> str:
    beside = Path(sys.executable).with_name("broker")
    if beside.exists():
        return str(beside)
    found = shutil.which("broker")
    if found is None:
        raise ChaosError("cannot find the `broker` command; install the rift-broker package")
    return found


def _faketime_library() -> str | None:
    try:
        from rift_chaos.nemesis.clock import find_libfaketime

        return find_libfaketime()
    except (ImportError, ChaosError, OSError):
        return None


class BrokerSystem:
    """System, ClusterSetup, Observable, LeaderAware and ClockControl for ``broker serve``."""

    def __init__(self, *, settings: SystemSettings) -> None:
        self.settings = settings
        options = dict(settings.options)
        self.session_timeout_ms = int(options.get("session_timeout_ms", 3000))
        self.election_timeout_ms = int(options.get("election_timeout_ms", 500))
        self.replica_lag_time_max_ms = int(options.get("replica_lag_time_max_ms", 3000))
        # A run's groups are few: a small __consumer_offsets keeps the cluster light.
        self.offsets_partitions = int(options.get("offsets_partitions", 6))
        self._nodes: tuple[Node, ...] = ()
        self._daemons: dict[str, tuple[Remote, Daemon]] = {}
        self._faketime = _faketime_library() if options.get("faketime", True) else None

    # -- System ------------------------------------------------------------------

    def install(self, remote: Remote) -> None:
        # Nodes share this machine's files (netns, local) or mount them (docker).
        remote.write_file("broker/installed", f"{_broker_command()}\n".encode())

    def configure(self, remote: Remote, *, nodes: Sequence[Node]) -> None:
        self._nodes = tuple(nodes)
        remote.write_file("broker/argv", " ".join(self._argv(remote)).encode() + b"\n")
        remote.write_file(FAKETIME_FILE, b"+0\n")

    def _id(self, node: Node) -> int:
        """The broker node id of ``node``: its position in the cluster, from 1."""
        for i, known in enumerate(self._nodes, start=1):
            if known.name == node.name:
                return i
        raise ChaosError(f"node {node.name} is not in the configured cluster")

    def _argv(self, remote: Remote) -> list[str]:
        node = remote.node
        controllers = ",".join(
            f"{self._id(n)}@{n.host}:{CLUSTER_PORT + n.port_offset}" for n in self._nodes
        )
        return [
            _broker_command(),
            "serve",
            "--data-dir",
            f"{remote.workdir}/data",
            "--listen",
            kafka_address(node),
            "--node-id",
            str(self._id(node)),
            "--controllers",
            controllers,
            "--session-timeout-ms",
            str(self.session_timeout_ms),
            "--election-timeout-ms",
            str(self.election_timeout_ms),
            "--replica-lag-time-max-ms",
            str(self.replica_lag_time_max_ms),
            "--offsets-partitions",
            str(self.offsets_partitions),
            "--group-initial-rebalance-delay-ms",
            "500",
        ]

    def start(self, remote: Remote) -> None:
        known = self._daemons.get(remote.node.name)
        if known is not None and known[0].alive(known[1]):
            return
        env: dict[str, str] = {}
        if self._faketime is not None:
            env = faketime_env(f"{remote.workdir}/{FAKETIME_FILE}", library=self._faketime)
        daemon = remote.start_daemon(
            self._argv(remote), log="broker.log", pidfile="broker.pid", env=env
        )
        self._daemons[remote.node.name] = (remote, daemon)

    def _signal(self, remote: Remote, sig: signal.Signals) -> bool:
        known = self._daemons.get(remote.node.name)
        return known is not None and known[0].signal(known[1], sig)

    def stop(self, remote: Remote) -> None:
        known = self._daemons.get(remote.node.name)
        if known is None:
            return
        known[0].signal(known[1], signal.SIGCONT)
        known[0].signal(known[1], signal.SIGTERM)
        deadline = time.monotonic() + 15
        while known[0].alive(known[1]) and time.monotonic() < deadline:
            time.sleep(0.05)
        known[0].signal(known[1], signal.SIGKILL)

    def kill(self, remote: Remote) -> None:
        self._signal(remote, signal.SIGKILL)

    def pause(self, remote: Remote) -> None:
        self._signal(remote, signal.SIGSTOP)

    def resume(self, remote: Remote) -> None:
        self._signal(remote, signal.SIGCONT)

    def wait_ready(self, remote: Remote, *, timeout: float) -> None:
        """Until the node answers Metadata and lists itself as a registered broker."""
        node_id = self._id(remote.node)
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            known = self._daemons.get(remote.node.name)
            if known is not None and not known[0].alive(known[1]):
                raise ChaosError(f"broker on {remote.node.name} exited: {self._last_error(remote)}")
            try:
                with Admin(kafka_address(remote.node), request_timeout_ms=2000) as admin:
                    brokers, _controller = admin.describe_cluster()
                if any(b.node == node_id for b in brokers):
                    return
            except (client_errors.ClientError, OSError) as exc:
                last = exc
            time.sleep(0.2)
        raise ChaosError(f"broker on {remote.node.name} not ready after {timeout:g}s: {last}")

    def _last_error(self, remote: Remote) -> str:
        try:
            lines = remote.read_file("broker.log").decode(errors="replace").splitlines()
        except ChaosError:
            return "no broker.log"
        errors = [line for line in lines if "error" in line.lower()]
        return (errors or lines or ["empty broker.log"])[-1].strip()

    def collect(self, remote: Remote, dest: Path) -> list[Path]:
        return remote.collect_logs(dest)

    def client(self) -> BrokerClient:
        return BrokerClient(settings=self.settings, nodes=self._nodes)

    # -- abilities ---------------------------------------------------------------

    def setup_cluster(self, nodes: Sequence[Node], *, timeout: float) -> None:
        s = self.settings
        configs = {"min.insync.replicas": str(s.min_insync_replicas)}
        deadline = time.monotonic() + timeout
        bootstrap = [kafka_address(n) for n in nodes]
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with Admin(bootstrap, request_timeout_ms=5000) as admin:
                    results = admin.create_topics(
                        [
                            NewTopic(
                                name=s.topic,
                                partitions=s.partitions,
                                replication_factor=s.replication_factor,
                                configs=tuple(configs.items()),
                            )
                        ]
                    )
                    error = results.get(s.topic)
                    if error is not None and not isinstance(
                        error, client_errors.TopicAlreadyExists
                    ):
                        raise error
                    admin.wait_for_leaders(
                        s.topic, timeout_ms=max(deadline - time.monotonic(), 1) * 1000
                    )
                    return
            except (client_errors.ClientError, OSError) as exc:
                last = exc
                time.sleep(0.5)
        raise ChaosError(f"could not create topic {s.topic!r} in {timeout:g}s: {last}")

    def leaders(self, nodes: Sequence[Node]) -> Mapping[tuple[str, int], str]:
        by_id = {self._id(n): n.name for n in nodes}
        try:
            with Admin([kafka_address(n) for n in nodes], request_timeout_ms=2000) as admin:
                info = admin.describe_topics([self.settings.topic]).get(self.settings.topic)
        except (client_errors.ClientError, OSError):
            return {}
        if info is None:
            return {}
        return {
            (self.settings.topic, p.partition): by_id[p.leader]
            for p in info.partitions
            if p.leader in by_id
        }

    def observations(self, remote: Remote) -> list[Mapping[str, Any]]:
        """Leaders and high watermarks the broker logged (``observe {...}`` lines)."""
        try:
            text = remote.read_file("broker.log").decode(errors="replace")
        except ChaosError:
            return []
        names = {self._id(n): n.name for n in self._nodes}
        out: list[Mapping[str, Any]] = []
        for line in text.splitlines():
            _, marker, payload = line.partition(" observe ")
            if not marker:
                continue
            try:
                fact = json.loads(payload)
            except json.JSONDecodeError:
                continue
            node = names.get(fact.get("node"), str(fact.get("node")))
            where = {"topic": fact["topic"], "partition": fact["partition"]}
            at = _fact_time_ms(fact, line)
            if fact.get("kind") == "leader":
                value = {**where, "epoch": fact["epoch"], "node": node}
                out.append({"f": "leader", "value": value, "time_ms": at})
            elif fact.get("kind") == "high-watermark":
                value = {**where, "offset": fact["offset"], "epoch": fact["epoch"]}
                out.append({"f": "high-watermark", "value": value, "time_ms": at})
        return out

    def set_clock_offset(self, remote: Remote, offset: float) -> None:
        if self._faketime is None:
            raise ChaosError("libfaketime is not installed (apt-get install faketime)")
        write_offset(remote, f"{remote.workdir}/{FAKETIME_FILE}", offset)
