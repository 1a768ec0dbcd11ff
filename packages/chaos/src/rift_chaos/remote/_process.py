"""A Remote over real processes on this machine, shared by ``local`` and ``netns``.

Both backends run programs with :mod:`subprocess` on the machine's own filesystem;
they differ only in an argv prefix (``netns`` puts ``ip netns exec <ns>`` in front,
which execs the program so the pid we see is the program's). Each node has its own
work directory so nodes never share files.

Every command and daemon gets its own session (so a timeout or a signal reaches
everything it started, via its process group) and ``RIFT_RUN_ID`` in its environment.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from rift_chaos.errors import CommandFailed, CommandTimeout, RemoteError
from rift_chaos.remote._protocol import RUN_ID_ENV, SIGNALS, CommandResult, Daemon, Node

__all__ = ["ProcessRemote", "pid_alive"]

# How long to wait for a killed process to be reaped before giving up on it.
_REAP_TIMEOUT = 10.0


def _state(pid: int) -> str | None:
    """The /proc state letter of ``pid`` (``None`` if gone or unknown)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The state follows the parenthesised command name, which may itself contain ')'.
    return stat[stat.rindex(")") + 2]


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (Linux /proc, else ``kill 0``)."""
    if Path("/proc/self/stat").exists():
        state = _state(pid)
        return state is not None and state not in "ZX"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ProcessRemote:
    """Remote for one node whose processes run on this machine."""

    def __init__(
        self, *, node: Node, workdir: Path, run_id: str, prefix: Sequence[str] = ()
    ) -> None:
        self._node = node
        self._workdir = workdir
        self._run_id = run_id
        self._prefix = tuple(prefix)
        self._daemons: dict[int, subprocess.Popen[bytes]] = {}
        self._logs: list[str] = []

    @property
    def node(self) -> Node:
        return self._node

    @property
    def workdir(self) -> str:
        return str(self._workdir)

    def _path(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else self._workdir / p

    def _env(self, env: Mapping[str, str] | None) -> dict[str, str]:
        merged = dict(os.environ)
        merged[RUN_ID_ENV] = self._run_id
        merged.update(env or {})
        return merged

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
        self._workdir.mkdir(parents=True, exist_ok=True)
        try:
            proc = subprocess.Popen(
                (*self._prefix, *args),
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self._env(env),
                cwd=str(self._path(cwd)) if cwd else self.workdir,
                start_new_session=True,
            )
        except OSError as exc:
            raise RemoteError(f"on {self._node.name}: cannot run {args[0]!r}: {exc}") from exc
        try:
            out, err = proc.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            _killpg(proc.pid, signal.SIGKILL)
            try:
                proc.communicate(timeout=_REAP_TIMEOUT)
            except subprocess.TimeoutExpired:
                # A grandchild that left our process group holds the pipes; stop
                # waiting for it rather than hang the run.
                proc.kill()
                proc.wait()
            raise CommandTimeout(node=self._node.name, argv=args, timeout=timeout) from None
        result = CommandResult(
            node=self._node.name,
            argv=args,
            exit_code=proc.returncode,
            stdout=out.decode("utf-8", "replace"),
            stderr=err.decode("utf-8", "replace"),
        )
        if check and not result.ok:
            raise CommandFailed(
                node=self._node.name, argv=args, exit_code=result.exit_code, stderr=result.stderr
            )
        return result

    def upload(self, local: Path, path: str) -> None:
        target = self._path(path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(local, target)
        except OSError as exc:
            raise RemoteError(
                f"on {self._node.name}: cannot upload {local} to {path}: {exc}"
            ) from exc

    def download(self, path: str, local: Path) -> None:
        try:
            local.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self._path(path), local)
        except OSError as exc:
            raise RemoteError(f"on {self._node.name}: cannot download {path}: {exc}") from exc

    def write_file(self, path: str, data: bytes) -> None:
        target = self._path(path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # Write then rename, so a reader (libfaketime re-reading its file) never
            # sees a half-written file.
            tmp = target.with_name(f".{target.name}.tmp")
            tmp.write_bytes(data)
            tmp.replace(target)
        except OSError as exc:
            raise RemoteError(f"on {self._node.name}: cannot write {path}: {exc}") from exc

    def read_file(self, path: str) -> bytes:
        try:
            return self._path(path).read_bytes()
        except OSError as exc:
            raise RemoteError(f"on {self._node.name}: cannot read {path}: {exc}") from exc

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
        try:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            pid_path.parent.mkdir(parents=True, exist_ok=True)
            with log_path.open("ab") as out:
                proc = subprocess.Popen(
                    (*self._prefix, *args),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=self._env(env),
                    cwd=str(self._path(cwd)) if cwd else self.workdir,
                    start_new_session=True,
                )
            pid_path.write_text(f"{proc.pid}\n")
        except OSError as exc:
            raise RemoteError(f"on {self._node.name}: cannot start {args[0]!r}: {exc}") from exc
        self._daemons[proc.pid] = proc
        if str(log_path) not in self._logs:
            self._logs.append(str(log_path))
        return Daemon(
            node=self._node.name, pid=proc.pid, argv=args, log=str(log_path), pidfile=str(pid_path)
        )

    def signal(self, daemon: Daemon, sig: signal.Signals) -> bool:
        if sig not in SIGNALS:
            raise ValueError(f"unsupported signal {sig.name}; use one of KILL, STOP, CONT, TERM")
        if not self.alive(daemon):
            return False
        delivered = _killpg(daemon.pid, sig)
        if sig is signal.SIGKILL:
            self._reap(daemon.pid)
        elif sig in (signal.SIGSTOP, signal.SIGCONT) and delivered:
            # Delivery is asynchronous; wait (bounded) so a nemesis's timeline says
            # when the process really stopped or resumed.
            stopped = sig is signal.SIGSTOP
            deadline = time.monotonic() + _REAP_TIMEOUT
            while time.monotonic() < deadline:
                state = _state(daemon.pid)
                if state is None or (state in "Tt") == stopped:
                    break
                time.sleep(0.001)
        return delivered

    def alive(self, daemon: Daemon) -> bool:
        proc = self._daemons.get(daemon.pid)
        if proc is not None:
            return proc.poll() is None
        return pid_alive(daemon.pid)

    def _reap(self, pid: int) -> None:
        proc = self._daemons.get(pid)
        if proc is not None:
            try:
                proc.wait(timeout=_REAP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
            return
        deadline = time.monotonic() + _REAP_TIMEOUT
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.01)

    def collect_logs(self, dest: Path) -> list[Path]:
        dest.mkdir(parents=True, exist_ok=True)
        copied = []
        for log in self._logs:
            target = dest / Path(log).name
            try:
                shutil.copyfile(log, target)
            except FileNotFoundError:
                continue
            copied.append(target)
        return copied

    def kill_all(self) -> None:
        """Kill every daemon this Remote started and reap it (used by teardown)."""
        for pid, proc in list(self._daemons.items()):
            if proc.poll() is None:
                _killpg(pid, signal.SIGKILL)
                try:
                    proc.wait(timeout=_REAP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    continue
            del self._daemons[pid]


def _killpg(pid: int, sig: signal.Signals) -> bool:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return False
    return True
