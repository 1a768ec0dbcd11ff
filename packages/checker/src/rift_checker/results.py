"""The verdict of a run: per-check results, cases with proof, and results.json.

results.json schema, version 1 (stable; add fields, never rename)::

    {
      "rift_results": 1,
      "valid": true | false | "unknown",
      "history": "<path or null>",
      "header": {...},                      # the history's header line
      "anomalies": {"<check>": <count>},    # checks with cases, tolerated or not
      "checks": {
        "<check>": {
          "status": "ok" | "anomaly" | "tolerated" | "unknown" | "skipped",
          "description": "...",
          "count": <int>,                   # exact number of cases
          "unknown": <int>,                 # items the history cannot decide
          "cases": [{"ops": [<op id>...], "explanation": "...", "steps": ["..."]}],
          "truncated": <bool>               # more cases than were kept
        }
      },
      "unknown_reasons": ["..."],
      "statistics": {...}                   # see rift_checker.stats
    }

``valid`` is false when any check that is run and not tolerated has a case; else
"unknown" when some check could not decide (typically: no final read, so an unread
write may be lost or merely late); else true.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

__all__ = ["RESULTS_VERSION", "Validity", "Status", "Case", "CheckResult", "Result"]

RESULTS_VERSION: Final = 1
Validity = bool | Literal["unknown"]
Status = Literal["ok", "anomaly", "tolerated", "unknown", "skipped"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    """One instance of an anomaly: the ops that prove it and a plain explanation.

    ``ops`` are op ids (the index of the invoke event) or, for observation checks,
    observation indexes. ``steps`` spell out a cycle one edge at a time.
    """

    check: str
    ops: tuple[int, ...]
    explanation: str
    steps: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"ops": list(self.ops), "explanation": self.explanation, "steps": list(self.steps)}


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    name: str
    description: str
    status: Status
    count: int = 0
    unknown: int = 0
    cases: tuple[Case, ...] = ()

    @property
    def truncated(self) -> bool:
        return self.count > len(self.cases)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "description": self.description,
            "count": self.count,
            "unknown": self.unknown,
            "cases": [c.to_dict() for c in self.cases],
            "truncated": self.truncated,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    """What :func:`rift_checker.check_history` returns."""

    valid: Validity
    checks: tuple[CheckResult, ...]
    statistics: dict[str, Any]
    header: dict[str, Any]
    history: str | None = None
    unknown_reasons: tuple[str, ...] = ()

    def check(self, name: str) -> CheckResult:
        """The result of the check called ``name``."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def anomalies(self) -> dict[str, int]:
        """Count of cases per check that found any (tolerated ones included)."""
        return {c.name: c.count for c in self.checks if c.count}

    def cases(self, name: str | None = None) -> list[Case]:
        """All kept cases, or those of one check."""
        return [case for c in self.checks if name in (None, c.name) for case in c.cases]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rift_results": RESULTS_VERSION,
            "valid": self.valid,
            "history": self.history,
            "header": self.header,
            "anomalies": self.anomalies,
            "checks": {c.name: c.to_dict() for c in self.checks},
            "unknown_reasons": list(self.unknown_reasons),
            "statistics": self.statistics,
        }

    def write_json(self, path: str | Path) -> None:
        """Write results.json (atomically: a temp file renamed over the target)."""
        target = Path(path)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")
        tmp.replace(target)
