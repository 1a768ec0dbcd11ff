"""The ``fake`` backend: an in-memory cluster for fast, deterministic runner tests.

Nothing is executed. Each node has a dict filesystem, a process table and an
iptables model (:class:`FirewallSim`); commands are answered by *handlers*
registered per program name. Built in: ``true``, ``false``, ``echo``, ``cat``,
``printenv``, ``sleep`` (advances a virtual clock, or times out without waiting),
``sh -c`` for scripts of ``echo [>&2]`` / ``exit N`` statements joined by ``;``,
and ``iptables``. Unknown programs exit 127. Daemons are entries in the process
table whose state follows the signals they get.

A handler takes ``(remote, command)`` and returns ``(exit_code, stdout, stderr)``;
register one with :meth:`FakeCluster.handle`. :meth:`FakeCluster.reachable` answers
whether node ``a``'s packets get into node ``b`` under the current rules.
"""

from __future__ import annotations

import dataclasses
import posixpath
import shlex
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rift_chaos.errors import CommandFailed, CommandTimeout, RemoteError
from rift_chaos.remote._cluster import ClusterBase
from rift_chaos.remote._firewall_sim import FirewallSim
from rift_chaos.remote._protocol import RUN_ID_ENV, SIGNALS, CommandResult, Daemon, Node

__all__ = ["FakeCluster", "FakeCommand", "FakeRemote", "Handler"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeCommand:
    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: str
    stdin: bytes | None
    timeout: float


Handler = Callable[["FakeRemote", FakeCommand], tuple[int, str, str]]


@dataclass(slots=True, kw_only=True)
class _Process:
    argv: tuple[str, ...]
    state: str = "running"  # running | stopped | dead
    signals: list[str] = field(default_factory=list)


class FakeRemote:
    """Remote of one fake node; has the Firewall ability."""

    def __init__(self, *, cluster: FakeCluster, node: Node) -> None:
        self._cluster = cluster
        self._node = node
        self.files: dict[str, bytes] = {}
        self.processes: dict[int, _Process] = {}
        self.firewall = FirewallSim()
        self.commands: list[tuple[str, ...]] = []  # every argv run, in order

    @property
    def node(self) -> Node:
        return self._node

    @property
    def workdir(self) -> str:
        return f"/rift/{self._cluster.run_id}/{self._node.name}"

    def _path(self, path: str) -> str:
        return posixpath.normpath(posixpath.join(self.workdir, path))

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 60.0,
        check: bool = True,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        stdin: bytes | None = None,
    ) -> CommandResult:
        args = tuple(argv)
        if not args:
            raise ValueError("argv must not be empty")
        self.commands.append(args)
        command = FakeCommand(
            argv=args,
            env={RUN_ID_ENV: self._cluster.run_id, **(env or {})},
            cwd=self._path(cwd or "."),
            stdin=stdin,
            timeout=timeout,
        )
        handler = self._cluster.handlers.get(posixpath.basename(args[0]))
        if handler is None:
            code, out, err = 127, "", f"fake: command not found: {args[0]}\n"
        else:
            code, out, err = handler(self, command)
        result = CommandResult(
            node=self._node.name, argv=args, exit_code=code, stdout=out, stderr=err
        )
        if check and code != 0:
            raise CommandFailed(node=self._node.name, argv=args, exit_code=code, stderr=err)
        return result

    def iptables(self, args: Sequence[str], *, check: bool = True) -> CommandResult:
        return self.run(("iptables", "-w", "10", *args), check=check)

    def upload(self, local: Path, path: str) -> None:
        try:
            self.files[self._path(path)] = local.read_bytes()
        except OSError as exc:
            raise RemoteError(f"on {self._node.name}: cannot upload {local}: {exc}") from exc

    def download(self, path: str, local: Path) -> None:
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(self.read_file(path))

    def write_file(self, path: str, data: bytes) -> None:
        self.files[self._path(path)] = bytes(data)

    def read_file(self, path: str) -> bytes:
        try:
            return self.files[self._path(path)]
        except KeyError:
            raise RemoteError(f"on {self._node.name}: cannot read {path}: no such file") from None

    def start_daemon(
        self,
        argv: Sequence[str],
        *,
        log: str,
        pidfile: str,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> Daemon:
        args = tuple(argv)
        if not args:
            raise ValueError("argv must not be empty")
        pid = self._cluster.next_pid()
        self.processes[pid] = _Process(argv=args)
        log_path, pid_path = self._path(log), self._path(pidfile)
        self.files[log_path] = (
            self.files.get(log_path, b"") + f"started {shlex.join(args)}\n".encode()
        )
        self.files[pid_path] = f"{pid}\n".encode()
        return Daemon(node=self._node.name, pid=pid, argv=args, log=log_path, pidfile=pid_path)

    def signal(self, daemon: Daemon, sig: signal.Signals) -> bool:
        if sig not in SIGNALS:
            raise ValueError(f"unsupported signal {sig.name}; use one of KILL, STOP, CONT, TERM")
        proc = self.processes.get(daemon.pid)
        if proc is None or proc.state == "dead":
            return False
        proc.signals.append(sig.name)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            proc.state = "dead"
        elif sig is signal.SIGSTOP:
            proc.state = "stopped"
        else:
            proc.state = "running"
        return True

    def alive(self, daemon: Daemon) -> bool:
        proc = self.processes.get(daemon.pid)
        return proc is not None and proc.state != "dead"

    def state(self, daemon: Daemon) -> str:
        """``running``, ``stopped`` or ``dead`` (fake only: for assertions in tests)."""
        proc = self.processes.get(daemon.pid)
        return "dead" if proc is None else proc.state

    def collect_logs(self, dest: Path) -> list[Path]:
        dest.mkdir(parents=True, exist_ok=True)
        out = []
        for path, data in sorted(self.files.items()):
            if path.endswith(".log"):
                target = dest / posixpath.basename(path)
                target.write_bytes(data)
                out.append(target)
        return out


class FakeCluster(ClusterBase[FakeRemote]):
    """A cluster of fake nodes n1..nN at 10.0.0.1..N."""

    def __init__(self, *, nodes: int, run_id: str | None = None) -> None:
        if nodes < 1:
            raise ValueError(f"nodes must be at least 1, got {nodes}")
        super().__init__(run_id=run_id)
        self._nodes = tuple(
            Node(name=f"n{i}", host=f"10.0.0.{i}", index=i) for i in range(1, nodes + 1)
        )
        self._remotes = {n.name: FakeRemote(cluster=self, node=n) for n in self._nodes}
        self.handlers: dict[str, Handler] = dict(_BUILTINS)
        self.clock = 0.0  # virtual seconds, advanced by `sleep`
        self._pid = 1000
        self.torn_down = False

    def handle(self, program: str, handler: Handler) -> None:
        """Answer commands whose program's basename is ``program`` with ``handler``."""
        self.handlers[program] = handler

    def next_pid(self) -> int:
        self._pid += 1
        return self._pid

    def reachable(self, source: str, dest: str) -> bool:
        """Whether packets from node ``source`` get into node ``dest``."""
        host = self.remote(source).node.host
        return host not in self.remote(dest).firewall.dropped_sources()

    def setup(self) -> None:
        self.torn_down = False

    def teardown(self) -> None:
        for remote in self._remotes.values():
            for proc in remote.processes.values():
                proc.state = "dead"
            remote.firewall = FirewallSim()
        self.torn_down = True


def _echo(words: Sequence[str]) -> str:
    return " ".join(words) + "\n"


def _sleep(remote: FakeRemote, cmd: FakeCommand) -> tuple[int, str, str]:
    seconds = float(cmd.argv[1]) if len(cmd.argv) > 1 else 0.0
    if seconds > cmd.timeout:
        remote._cluster.clock += cmd.timeout
        raise CommandTimeout(node=remote.node.name, argv=cmd.argv, timeout=cmd.timeout)
    remote._cluster.clock += seconds
    return 0, "", ""


def _sh(remote: FakeRemote, cmd: FakeCommand) -> tuple[int, str, str]:
    if len(cmd.argv) < 3 or cmd.argv[1] != "-c":
        return 2, "", "fake sh: only `sh -c SCRIPT` is supported\n"
    out, err = "", ""
    for statement in cmd.argv[2].split(";"):
        words = shlex.split(statement)
        if not words:
            continue
        if words[0] == "exit":
            return int(words[1]) if len(words) > 1 else 0, out, err
        if words[0] == "echo" and words[-1] == ">&2":
            err += _echo(words[1:-1])
        elif words[0] == "echo":
            out += _echo(words[1:])
        elif words[0] == "sleep":
            _sleep(remote, dataclasses.replace(cmd, argv=tuple(words)))
        else:
            return 127, out, err + f"fake sh: {words[0]}: not found\n"
    return 0, out, err


def _printenv(remote: FakeRemote, cmd: FakeCommand) -> tuple[int, str, str]:
    names = cmd.argv[1:]
    if not names:
        return 0, "".join(f"{k}={v}\n" for k, v in sorted(cmd.env.items())), ""
    missing = [n for n in names if n not in cmd.env]
    return (1 if missing else 0), "".join(f"{cmd.env[n]}\n" for n in names if n in cmd.env), ""


_BUILTINS: dict[str, Handler] = {
    "true": lambda r, c: (0, "", ""),
    "false": lambda r, c: (1, "", ""),
    "echo": lambda r, c: (0, _echo(c.argv[1:]), ""),
    "cat": lambda r, c: (0, (c.stdin or b"").decode("utf-8", "replace"), ""),
    "printenv": _printenv,
    "sleep": _sleep,
    "sh": _sh,
    "iptables": lambda r, c: r.firewall.apply(c.argv[1:]),
}
