"""The Remote contract: how the toolkit acts on one node.

A :class:`Remote` is bound to one node. It runs commands, moves files and manages
daemons there; every backend (``fake``, ``local``, ``netns``, later ``docker`` and
``ssh``) implements it, and one conformance suite
(``packages/chaos/tests/integration/test_remote_conformance.py``) checks them all.

Paths given to a Remote are paths *on the node*. Backends that share this machine's
filesystem (``local``, ``netns``) give every node its own :attr:`Remote.workdir`; a
System keeps all its files under it so nodes never collide.

Optional abilities are separate protocols, checked with ``isinstance``:
:class:`Firewall` (iptables inside the node's own network stack) is what partition
nemeses need; the ``local`` backend lacks it because its nodes share one stack.

A :class:`Cluster` creates and destroys the nodes of one run. Everything it creates
(namespaces, links, processes, files) is tagged with its ``run_id`` so that
``chaos heal --run-id`` can find what a crashed run left behind.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol, runtime_checkable

__all__ = [
    "RUN_ID_ENV",
    "SIGNALS",
    "Cluster",
    "CommandResult",
    "Daemon",
    "Firewall",
    "Node",
    "Remote",
]

#: Every process a backend starts carries this variable, set to the run id, so
#: ``chaos heal`` can find processes of a crashed run without trusting pidfiles.
RUN_ID_ENV = "RIFT_RUN_ID"

#: The signals :meth:`Remote.signal` accepts.
SIGNALS = frozenset({signal.SIGKILL, signal.SIGSTOP, signal.SIGCONT, signal.SIGTERM})


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    """One node of a cluster.

    ``host`` is the address peers and the control process use to reach the node.
    ``port_offset`` is added to every port a System listens on; it is 0 wherever each
    node has its own address, and non-zero only where nodes share one (``local`` on a
    platform without a per-node loopback address).
    """

    name: str
    host: str
    index: int
    port_offset: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandResult:
    node: str
    argv: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Daemon:
    """A handle on a background process; ``pid`` is as seen by the backend's host."""

    node: str
    pid: int
    argv: tuple[str, ...]
    log: str
    pidfile: str


class Remote(Protocol):
    """Commands, files and daemons on one node.

    Contract (checked by the conformance suite):

    - :meth:`run` waits for ``argv`` (never a shell string) and returns its exit code,
      stdout and stderr (UTF-8, undecodable bytes replaced). ``env`` adds to the
      node's environment. ``cwd`` defaults to :attr:`workdir`. If ``check`` and the
      exit code is non-zero it raises :class:`~rift_chaos.errors.CommandFailed`. After
      ``timeout`` seconds the command and everything it started is killed and
      :class:`~rift_chaos.errors.CommandTimeout` raised.
    - :meth:`upload` copies a local file to a path on the node, creating parent
      directories; :meth:`download` copies back. :meth:`write_file` /
      :meth:`read_file` do the same from and to bytes.
    - :meth:`start_daemon` starts ``argv`` in the background in its own process group,
      stdout and stderr appended to ``log``, its pid written to ``pidfile``, and
      returns at once. The daemon survives the control process (``chaos heal`` ends
      it); it carries ``RIFT_RUN_ID`` in its environment.
    - :meth:`signal` sends one of :data:`SIGNALS` to the daemon's process group and
      returns whether it was delivered (``False`` if it had already exited; never an
      error). After ``SIGKILL`` returns, :meth:`alive` is ``False``; after ``SIGSTOP``
      / ``SIGCONT`` return, the process is stopped / running.
    - :meth:`alive` is ``True`` while the daemon exists, including while stopped.
    - :meth:`collect_logs` copies every daemon log of this node into ``dest`` and
      returns the local paths.
    """

    @property
    def node(self) -> Node: ...

    @property
    def workdir(self) -> str: ...

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 60.0,
        check: bool = True,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        stdin: bytes | None = None,
    ) -> CommandResult: ...

    def upload(self, local: Path, path: str) -> None: ...

    def download(self, path: str, local: Path) -> None: ...

    def write_file(self, path: str, data: bytes) -> None: ...

    def read_file(self, path: str) -> bytes: ...

    def start_daemon(
        self,
        argv: Sequence[str],
        *,
        log: str,
        pidfile: str,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> Daemon: ...

    def signal(self, daemon: Daemon, sig: signal.Signals) -> bool: ...

    def alive(self, daemon: Daemon) -> bool: ...

    def collect_logs(self, dest: Path) -> list[Path]: ...


@runtime_checkable
class Firewall(Protocol):
    """Ability: run ``iptables`` inside the node's own network stack.

    ``args`` follow ``iptables`` (without the program name). The call waits for the
    xtables lock. Returns like :meth:`Remote.run`; ``check`` as there.
    """

    def iptables(self, args: Sequence[str], *, check: bool = True) -> CommandResult: ...


class Cluster(Protocol):
    """The nodes of one run, created by :meth:`setup` and destroyed by :meth:`teardown`.

    ``setup`` is all-or-nothing: if it fails, what it created is removed before the
    error propagates. ``teardown`` is idempotent and best effort: it kills every process
    the run started on the nodes and removes every namespace, link and rule tagged
    with ``run_id``. Using the cluster as a context manager does both.
    """

    @property
    def run_id(self) -> str: ...

    @property
    def nodes(self) -> tuple[Node, ...]: ...

    def remote(self, node: str) -> Remote: ...

    def setup(self) -> None: ...

    def teardown(self) -> None: ...

    def __enter__(self) -> Cluster: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
