"""The one error family of rift_checker.

Every error a user can see derives from :class:`CheckerError` and carries a one-line
message that says what is wrong and where. A malformed history raises
:class:`InvalidHistory`, which is also a ``ValueError`` for callers that expect one.
"""

from __future__ import annotations

__all__ = ["CheckerError", "InvalidHistory", "InvalidConfig"]


class CheckerError(Exception):
    """Root of every rift_checker error. ``exit_code`` is what the CLI exits with."""

    exit_code: int = 2


class InvalidHistory(CheckerError, ValueError):
    """The history file breaks the schema (see HISTORY.md).

    ``line`` is the 1-based line number in the file (the header is line 1), or
    ``None`` when the problem is not tied to one line (an unreadable file).
    """

    def __init__(self, message: str, *, line: int | None = None, path: str | None = None) -> None:
        self.line = line
        self.path = path
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        elif line is not None:
            where = f"line {line}: "
        super().__init__(f"{where}{message}")


class InvalidConfig(CheckerError, ValueError):
    """A CheckConfig names a check that does not exist, or has a bad setting."""
