"""Which checks run, and which anomalies a workload tolerates.

Check names are stable: users filter on them, results.json keys by them, and the
toolkit's workload files list them. A *tolerated* check still runs and reports its
cases, but they do not make the verdict invalid (for example ``duplicate`` for a
producer without idempotence, ``poll-skip`` and ``nonmonotonic-poll`` for consumers
in a group whose partitions move under ``subscribe``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from rift_checker.errors import InvalidConfig

__all__ = ["CHECKS", "CheckConfig"]

#: Every check, in report order, with the one sentence that says what it finds.
CHECKS: Final[dict[str, str]] = {
    "lost-write": "an acknowledged send never read, although a read reached past its offset",
    "unseen": "an acknowledged send not read by the final read (loss or delay)",
    "duplicate": "one value at two offsets",
    "inconsistent-offsets": "one offset holding two values",
    "nonmonotonic-send": "a process's sends to a partition got offsets out of order",
    "nonmonotonic-poll": "a poll went back or stood still in a partition",
    "poll-skip": "a poll jumped over an offset known to hold a value",
    "failed-write-read": "a send that completed fail, whose value was read",
    "multiple-leaders": "two nodes led one partition in one epoch",
    "hw-regression": "a partition's high watermark went backwards",
    "cycle": "the log order contradicts real-time order (dependency cycle)",
    "lost-commit": "a group resumed a partition below an offset it had committed",
}


def _names(value: Iterable[str], what: str) -> frozenset[str]:
    if isinstance(value, str):
        raise InvalidConfig(f"{what} must be a collection of check names, not one string")
    names = frozenset(value)
    unknown = sorted(names - CHECKS.keys())
    if unknown:
        raise InvalidConfig(
            f"unknown check name(s) in {what}: {', '.join(unknown)}; known: {', '.join(CHECKS)}"
        )
    return names


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckConfig:
    """Settings of one checker run.

    ``checks``: the checks to report (default: all). ``tolerate``: checks whose
    cases are reported but do not invalidate. ``max_cases``: cases kept per check
    (the count is always exact).
    """

    checks: frozenset[str] = field(default_factory=lambda: frozenset(CHECKS))
    tolerate: frozenset[str] = frozenset()
    max_cases: int = 100

    def __post_init__(self) -> None:
        object.__setattr__(self, "checks", _names(self.checks, "checks"))
        object.__setattr__(self, "tolerate", _names(self.tolerate, "tolerate"))
        if isinstance(self.max_cases, bool) or not isinstance(self.max_cases, int):
            raise InvalidConfig("max_cases must be an integer")
        if self.max_cases < 0:
            raise InvalidConfig("max_cases must be >= 0")
