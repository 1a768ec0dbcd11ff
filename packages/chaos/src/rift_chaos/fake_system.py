"""An in-memory System and Client, for runner tests on any backend.

:class:`FakeSystem` runs one placeholder daemon per node (``sleep``) through the
node's Remote, so kill, pause and restart are real on ``local`` and ``netns`` and
simulated on ``fake``. Its data lives in one in-memory :class:`FakeLog` shared by
all nodes, one list per ``topic/partition``: a ``send`` appends and is acknowledged
with its offset, a ``poll`` reads on from where the worker's last poll stopped in
each assigned partition, ``final-read`` reads everything. Values follow the
checker's history schema (see :mod:`rift_chaos.generator.schedule`). A client whose
node is killed or paused completes with ``info`` (a timeout), never ``fail``.

It is correct by construction, so a run against it must be valid; a deliberately
broken variant belongs in a test tree, not here.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rift_chaos.client import Client
from rift_chaos.errors import ChaosError
from rift_chaos.nemesis.clock import write_offset
from rift_chaos.op import Op
from rift_chaos.remote import Daemon, Node, Remote
from rift_chaos.system import ClockControl, LeaderAware, System, SystemSettings

__all__ = ["FakeClient", "FakeLog", "FakeSystem"]


class FakeLog:
    """Append-only lists of values, one per ``"topic/partition"``; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._partitions: dict[str, list[object]] = {}

    def append(self, tp: str, value: object) -> int:
        with self._lock:
            values = self._partitions.setdefault(tp, [])
            values.append(value)
            return len(values) - 1

    def read(self, tp: str, start: int, limit: int) -> list[list[object]]:
        """``[offset, value]`` records of ``tp`` from ``start``, at most ``limit``."""
        with self._lock:
            values = self._partitions.get(tp, [])[start : start + limit]
        return [[start + i, v] for i, v in enumerate(values)]


class FakeSystem:
    """System, LeaderAware and ClockControl over a placeholder daemon per node."""

    def __init__(self, *, settings: SystemSettings, log: FakeLog | None = None) -> None:
        self.settings = settings
        self.log = log or FakeLog()
        self._daemons: dict[str, tuple[Remote, Daemon]] = {}
        self._paused: set[str] = set()
        self.clock_offsets: dict[str, float] = {}
        self._lock = threading.Lock()

    def install(self, remote: Remote) -> None:
        remote.write_file("fake-system/installed", b"yes\n")

    def configure(self, remote: Remote, *, nodes: Sequence[Node]) -> None:
        config = {"nodes": [n.name for n in nodes], "topic": self.settings.topic}
        remote.write_file("fake-system/config.json", json.dumps(config).encode())

    def start(self, remote: Remote) -> None:
        with self._lock:
            known = self._daemons.get(remote.node.name)
            if known is not None and known[0].alive(known[1]):
                return
            daemon = remote.start_daemon(
                ["sleep", "100000"], log="fake-system/node.log", pidfile="fake-system/node.pid"
            )
            self._daemons[remote.node.name] = (remote, daemon)
            self._paused.discard(remote.node.name)

    def _signal(self, remote: Remote, sig: signal.Signals) -> None:
        known = self._daemons.get(remote.node.name)
        if known is not None:
            known[0].signal(known[1], sig)

    def stop(self, remote: Remote) -> None:
        self._signal(remote, signal.SIGKILL)  # `sleep` has nothing to flush

    def kill(self, remote: Remote) -> None:
        self._signal(remote, signal.SIGKILL)

    def pause(self, remote: Remote) -> None:
        self._signal(remote, signal.SIGSTOP)
        self._paused.add(remote.node.name)

    def resume(self, remote: Remote) -> None:
        self._signal(remote, signal.SIGCONT)
        self._paused.discard(remote.node.name)

    def serving(self, node: str) -> bool:
        """Whether ``node`` answers requests: started, not killed, not paused."""
        known = self._daemons.get(node)
        return known is not None and node not in self._paused and known[0].alive(known[1])

    def wait_ready(self, remote: Remote, *, timeout: float) -> None:
        if not self.serving(remote.node.name):
            raise ChaosError(f"fake system on {remote.node.name} is not running")

    def collect(self, remote: Remote, dest: Path) -> list[Path]:
        return remote.collect_logs(dest)

    def client(self) -> FakeClient:
        return FakeClient(self)

    def leaders(self, nodes: Sequence[Node]) -> Mapping[tuple[str, int], str]:
        serving = [n.name for n in nodes if self.serving(n.name)]
        if not serving:
            return {}
        return {(self.settings.topic, p): serving[0] for p in range(self.settings.partitions)}

    def set_clock_offset(self, remote: Remote, offset: float) -> None:
        write_offset(remote, "fake-system/faketime", offset)
        self.clock_offsets[remote.node.name] = offset


class FakeClient:
    """Client of a FakeSystem: send, poll, final-read, assign, subscribe, commit."""

    def __init__(self, system: FakeSystem, *, batch: int = 10) -> None:
        self._system = system
        self._node: str | None = None
        self._batch = batch
        topic, count = system.settings.topic, system.settings.partitions
        self._assigned = [f"{topic}/{p}" for p in range(count)]
        self._positions: dict[str, int] = {}

    def open(self, node: Node, *, timeout: float) -> None:
        if not self._system.serving(node.name):
            raise ConnectionError(f"{node.name} is not serving")
        self._node = node.name

    def invoke(self, op: Op) -> Op:
        if self._node is None or not self._system.serving(self._node):
            return op.info(error="timeout: node not serving")
        log, settings = self._system.log, self._system.settings
        if op.f == "send":
            tp = f"{op.value['topic']}/{op.value['partition']}"
            offset = log.append(tp, op.value["value"])
            return op.ok(value={**op.value, "offset": offset})
        if op.f == "poll":
            records = {}
            for tp in self._assigned:
                start = self._positions.get(tp, 0)
                got = log.read(tp, start, self._batch)
                if got:
                    self._positions[tp] = start + len(got)
                    records[tp] = got
            return op.ok(value={"records": records})
        if op.f == "final-read":
            every = [f"{settings.topic}/{p}" for p in range(settings.partitions)]
            return op.ok(value={"records": {tp: log.read(tp, 0, 1 << 62) for tp in every}})
        if op.f in ("assign", "subscribe"):
            if op.f == "assign":
                self._assigned = list(op.value["partitions"])
            self._positions = {}
            return op.ok()
        if op.f == "commit":
            return op.ok()
        return op.fail(error=f"unsupported operation {op.f!r}")

    def close(self) -> None:
        self._node = None


if TYPE_CHECKING:  # mypy proves the fakes satisfy the protocols they stand in for
    _system: System = FakeSystem(settings=SystemSettings())
    _leaders: LeaderAware = FakeSystem(settings=SystemSettings())
    _clock: ClockControl = FakeSystem(settings=SystemSettings())
    _client: Client = FakeClient(FakeSystem(settings=SystemSettings()))
