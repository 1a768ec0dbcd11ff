"""The one error family of rift_chaos.

Every error a user can see derives from :class:`ChaosError`, and its message is one
line that says what went wrong and, where possible, what to do. Foreign exceptions
(``OSError`` from subprocess, ``yaml.YAMLError``, ...) are translated at the
boundary where they happen; a stdlib base is added where callers expect one.
"""

from __future__ import annotations

__all__ = [
    "ChaosError",
    "RemoteError",
    "CommandFailed",
    "CommandTimeout",
    "BackendUnavailable",
    "UnsupportedAbility",
    "InvalidWorkload",
    "SystemNotFound",
    "NotImplementedYet",
]


class ChaosError(Exception):
    """Root of every rift_chaos error. ``exit_code`` is what the CLI exits with."""

    exit_code: int = 2


class RemoteError(ChaosError):
    """A Remote could not do what it was asked (a file is missing, a node is gone)."""


class CommandFailed(RemoteError):
    """A command run with ``check=True`` exited non-zero."""

    def __init__(self, *, node: str, argv: tuple[str, ...], exit_code: int, stderr: str) -> None:
        last = stderr.strip().splitlines()[-1] if stderr.strip() else "no stderr"
        super().__init__(f"on {node}: {' '.join(argv)!r} exited {exit_code}: {last}")
        self.node = node
        self.argv = argv
        self.exit_code_of_command = exit_code
        self.stderr = stderr


class CommandTimeout(RemoteError, TimeoutError):
    """A command did not finish within its timeout; it has been killed."""

    def __init__(self, *, node: str, argv: tuple[str, ...], timeout: float) -> None:
        super().__init__(f"on {node}: {' '.join(argv)!r} timed out after {timeout:g}s")
        self.node = node
        self.argv = argv
        self.timeout = timeout


class BackendUnavailable(ChaosError):
    """A backend cannot run here (not root, a tool is missing, no Docker daemon)."""


class UnsupportedAbility(ChaosError):
    """A nemesis needs an ability (firewall, clock control) the backend or system lacks."""


class InvalidWorkload(ChaosError, ValueError):
    """A workload file is malformed; the message names the bad field."""

    exit_code = 2


class SystemNotFound(ChaosError, LookupError):
    """No System is registered under that name in the ``rift.systems`` entry points."""


class NotImplementedYet(ChaosError, NotImplementedError):
    """A command that exists in the CLI but is not wired up yet."""
