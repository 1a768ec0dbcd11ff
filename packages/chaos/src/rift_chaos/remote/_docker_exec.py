"""A Remote built on one primitive, "exec argv on the node", shared by docker and ssh.

Theory of operation. ``docker`` (exec in a container) and ``ssh`` (a command on a
channel) can both run an argv and move bytes, but neither gives us the node's
processes as local :class:`subprocess.Popen` objects. So everything the
:class:`~rift_chaos.remote.Remote` contract asks beyond that is done by small POSIX
``sh`` scripts run *on the node*:

- :meth:`run` wraps the argv as ``setsid -w sh -c 'echo $$ >PIDFILE; ARGV'``:
  the command leads its own session, so on timeout the control side kills the whole
  process group with a second exec (``kill -KILL -- -PGID``), reaching everything it
  started. (The wrapper waits for ARGV rather than exec it, to remove the pidfile.)
  Stdin is uploaded to a file first and redirected, so the primitive needs no
  stdin stream.
- :meth:`start_daemon` runs a script that starts ``setsid sh -c 'write pidfile;
  exec ARGV'`` in the background with stdout/stderr appended to the log, waits
  (bounded) for the pidfile and prints the pid. ``Daemon.pid`` is the pid *on the
  node* (inside the container's pid namespace for docker).
- :meth:`signal` / :meth:`alive` read ``/proc/PID/stat`` on the node and signal the
  process group, waiting (bounded) until a KILL, STOP or CONT has taken effect.

Subclasses implement :meth:`_exec` (run argv, return exit code and output, raise
:class:`TimeoutError` after ``timeout``), :meth:`_put` and :meth:`_get`.
"""

from __future__ import annotations

import posixpath
import secrets
import signal
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path

from rift_chaos.errors import CommandFailed, CommandTimeout, RemoteError
from rift_chaos.remote._protocol import RUN_ID_ENV, SIGNALS, CommandResult, Daemon, Node

__all__ = ["ExecRemote"]

# The wrapper stays the session leader (no exec) so it can remove its own pidfile.
_RUN = (
    'p=$1; shift; mkdir -p "${p%/*}" && echo $$ >"$p" || exit 125; '
    '"$@"; rc=$?; rm -f "$p"; exit $rc'
)
_RUN_STDIN = (
    'p=$1; shift; echo $$ >"$p" || exit 125; "$@" <"$p.in"; rc=$?; rm -f "$p" "$p.in"; exit $rc'
)

_DAEMON = r"""
log=$1 pidfile=$2; shift 2
mkdir -p "$(dirname "$log")" "$(dirname "$pidfile")" && rm -f "$pidfile" || exit 125
setsid sh -c 'p=$1; shift; echo $$ >"$p.t" && mv "$p.t" "$p" && exec "$@"' rift "$pidfile" "$@" \
    >>"$log" 2>&1 </dev/null &
i=0
while [ ! -s "$pidfile" ] && [ "$i" -lt 1000 ]; do sleep 0.01; i=$((i+1)); done
cat "$pidfile"
"""

# state PID -> dead | stopped | running, from /proc (the comm field may contain ')').
_STATE = r"""
state() {
    s=$(sed 's/.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null) || { echo dead; return; }
    case "$s" in Z|X|'') echo dead;; T|t) echo stopped;; *) echo running;; esac
}
"""

# signal SIG PID WANT: exit 3 if the process was already gone, else send SIG to its
# group and wait (at most ~10 s) until its state is WANT (or any state if "any").
_SIGNAL = (
    _STATE
    + r"""
sig=$1 pid=$2 want=$3
[ "$(state "$pid")" = dead ] && exit 3
kill -s "$sig" -- "-$pid" 2>/dev/null || kill -s "$sig" "$pid" 2>/dev/null || exit 3
i=0
while [ "$want" != any ] && [ "$(state "$pid")" != "$want" ] && [ "$i" -lt 1000 ]; do
    sleep 0.01; i=$((i+1))
done
"""
)

_ALIVE = _STATE + '[ "$(state "$1")" != dead ]\n'

_KILL_GROUP = 'pg=$(cat "$0" 2>/dev/null) && kill -s KILL -- "-$pg" 2>/dev/null; rm -f "$0" "$0.in"'

_WANT = {
    signal.SIGKILL: "dead",
    signal.SIGSTOP: "stopped",
    signal.SIGCONT: "running",
    signal.SIGTERM: "any",
}

# How long the helper scripts themselves may take (they wait at most ~10 s).
_HELPER_TIMEOUT = 60.0


class ExecRemote(ABC):
    """Remote over an exec primitive; see the module docstring."""

    def __init__(self, *, node: Node, workdir: str, run_id: str) -> None:
        self._node = node
        self._workdir = workdir
        self._run_id = run_id
        self._logs: list[str] = []

    # -- what a backend provides -------------------------------------------------

    @abstractmethod
    def _exec(
        self, argv: Sequence[str], *, env: Mapping[str, str], cwd: str, timeout: float
    ) -> tuple[int, bytes, bytes]:
        """Run ``argv`` on the node; raise ``TimeoutError`` after ``timeout`` seconds
        (leaving the command to the caller to kill) and RemoteError if unreachable."""

    @abstractmethod
    def _put(self, path: str, data: bytes, *, mode: int = 0o644) -> None:
        """Write ``data`` to absolute ``path``, creating parents, atomically (rename)."""

    @abstractmethod
    def _get(self, path: str) -> bytes:
        """Read absolute ``path``; RemoteError if it is missing or not a file."""

    # -- the Remote protocol -----------------------------------------------------

    @property
    def node(self) -> Node:
        return self._node

    @property
    def workdir(self) -> str:
        return self._workdir

    def _path(self, path: str) -> str:
        return path if posixpath.isabs(path) else posixpath.join(self._workdir, path)

    def _env(self, env: Mapping[str, str] | None) -> dict[str, str]:
        merged = {RUN_ID_ENV: self._run_id}
        merged.update(env or {})
        return merged

    def _helper(self, script: str, *args: str) -> tuple[int, str]:
        code, out, _ = self._exec(
            ("sh", "-c", script, "rift", *args),
            env=self._env(None),
            cwd="/",
            timeout=_HELPER_TIMEOUT,
        )
        return code, out.decode("utf-8", "replace")

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
        pidfile = posixpath.join(self._workdir, ".exec", secrets.token_hex(8))
        if stdin is not None:
            self._put(f"{pidfile}.in", stdin, mode=0o600)  # also creates the directory
        script = _RUN if stdin is None else _RUN_STDIN
        wrapped = ("setsid", "-w", "sh", "-c", script, "rift", pidfile, *args)
        try:
            code, out, err = self._exec(
                wrapped,
                env=self._env(env),
                cwd=self._path(cwd) if cwd else self._workdir,
                timeout=timeout,
            )
        except TimeoutError:
            try:
                self._exec(("sh", "-c", _KILL_GROUP, pidfile), env={}, cwd="/", timeout=30.0)
            except (TimeoutError, RemoteError):
                pass
            raise CommandTimeout(node=self._node.name, argv=args, timeout=timeout) from None
        result = CommandResult(
            node=self._node.name,
            argv=args,
            exit_code=code,
            stdout=out.decode("utf-8", "replace"),
            stderr=err.decode("utf-8", "replace"),
        )
        if check and not result.ok:
            raise CommandFailed(
                node=self._node.name, argv=args, exit_code=result.exit_code, stderr=result.stderr
            )
        return result

    def upload(self, local: Path, path: str) -> None:
        try:
            data = local.read_bytes()
            mode = local.stat().st_mode & 0o777
        except OSError as exc:
            raise RemoteError(
                f"on {self._node.name}: cannot upload {local} to {path}: {exc}"
            ) from exc
        self._put(self._path(path), data, mode=mode)

    def download(self, path: str, local: Path) -> None:
        data = self._get(self._path(path))
        try:
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(data)
        except OSError as exc:
            raise RemoteError(f"on {self._node.name}: cannot download {path}: {exc}") from exc

    def write_file(self, path: str, data: bytes) -> None:
        self._put(self._path(path), data)

    def read_file(self, path: str) -> bytes:
        return self._get(self._path(path))

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
        log_path, pid_path = self._path(log), self._path(pidfile)
        code, out, err = self._exec(
            ("sh", "-c", _DAEMON, "rift", log_path, pid_path, *args),
            env=self._env(env),
            cwd=self._path(cwd) if cwd else self._workdir,
            timeout=_HELPER_TIMEOUT,
        )
        pid = out.decode("utf-8", "replace").strip()
        if code != 0 or not pid.isdigit():
            detail = err.decode("utf-8", "replace").strip() or f"exit {code}"
            raise RemoteError(f"on {self._node.name}: cannot start {args[0]!r}: {detail}")
        if log_path not in self._logs:
            self._logs.append(log_path)
        return Daemon(node=self._node.name, pid=int(pid), argv=args, log=log_path, pidfile=pid_path)

    def signal(self, daemon: Daemon, sig: signal.Signals) -> bool:
        if sig not in SIGNALS:
            raise ValueError(f"unsupported signal {sig.name}; use one of KILL, STOP, CONT, TERM")
        try:
            code, _ = self._helper(
                _SIGNAL, sig.name.removeprefix("SIG"), str(daemon.pid), _WANT[sig]
            )
        except RemoteError:
            if sig is signal.SIGKILL and not self.alive(daemon):
                return False
            raise
        return code == 0

    def alive(self, daemon: Daemon) -> bool:
        try:
            code, _ = self._helper(_ALIVE, str(daemon.pid))
        except RemoteError:
            return False  # the node (container) is gone, and its processes with it
        return code == 0

    def collect_logs(self, dest: Path) -> list[Path]:
        dest.mkdir(parents=True, exist_ok=True)
        copied = []
        for log in self._logs:
            target = dest / posixpath.basename(log)
            try:
                self.download(log, target)
            except RemoteError:
                continue
            copied.append(target)
        return copied

    def iptables(self, args: Sequence[str], *, check: bool = True) -> CommandResult:
        """The Firewall ability: ``iptables`` in the node's own network stack."""
        return self.run(("iptables", "-w", "10", *args), check=check, timeout=30.0, cwd="/")
