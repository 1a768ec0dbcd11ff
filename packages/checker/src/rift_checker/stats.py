"""Statistics of a history: op counts, throughput and latency quantiles.

The ``statistics`` object of results.json::

    {
      "ops": <int>,                          # operations (invoke/completion pairs)
      "events": <int>,                       # lines after the header
      "by_type": {"ok": n, "fail": n, "info": n},
      "by_f": {"<f>": {"ok": n, "fail": n, "info": n}},
      "incomplete": <int>,                   # invokes never completed (counted as info)
      "observations": {"<f>": n},
      "duration_s": <float>,                 # first to last event time
      "throughput_ok_per_s": <float>,
      "latency_ms": {"<f>": {"count","p50","p90","p99","max"}}   # ok ops only
    }
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Sequence
from typing import Any

_sort_q: Callable[[array[int]], None] | None
try:  # the checker's native core, where a C compiler built it (see _native.c)
    from rift_checker._native import sort_q as _sort_q
except ImportError:  # pragma: no cover - built without a compiler: a list sort
    _sort_q = None

__all__ = ["Stats", "quantile"]

_QUANTILES = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))


def quantile(sorted_values: Sequence[int], q: float) -> int:
    """The nearest-rank ``q`` quantile of an already sorted, non-empty list."""
    rank = math.ceil(q * len(sorted_values))
    return sorted_values[max(0, min(len(sorted_values), rank) - 1)]


class Stats:
    """Accumulates statistics while the checker streams the history (mutable)."""

    __slots__ = ("by_f", "events", "first_time", "incomplete", "last_time", "latency", "observed")

    def __init__(self) -> None:
        self.by_f: dict[str, dict[str, int]] = {}
        self.latency: dict[str, array[int]] = {}
        self.observed: dict[str, int] = {}
        self.incomplete = 0
        self.events = 0
        self.first_time: int | None = None
        self.last_time: int | None = None

    def op(self, f: str, type_: str, inv_time: int, done_time: int | None) -> None:
        """Count an operation (``done_time`` None: it never completed)."""
        counts = self.by_f.get(f)
        if counts is None:
            counts = self.by_f[f] = {"ok": 0, "fail": 0, "info": 0}
        if type_ != "ok":  # an ok op is counted by its latency entry
            counts[type_] += 1
        if self.first_time is None or inv_time < self.first_time:
            self.first_time = inv_time
        if done_time is None:
            self.incomplete += 1
            return
        if self.last_time is None or done_time > self.last_time:
            self.last_time = done_time
        if type_ == "ok":
            lat = self.latency.get(f)
            if lat is None:
                lat = self.latency[f] = array("q")
            lat.append(done_time - inv_time)

    def observation(self, f: str, time: int) -> None:
        self.observed[f] = self.observed.get(f, 0) + 1
        if self.first_time is None or time < self.first_time:
            self.first_time = time
        if self.last_time is None or time > self.last_time:
            self.last_time = time

    def seen(self, *, events: int, first_time: int | None, last_time: int | None) -> None:
        """Settle what the caller counted itself: the event lines, the first event's time.

        ``last_time`` is that of the last completion :meth:`op` was not told about:
        the caller may record an ok op of ``f`` by appending its latency to
        ``latency[f]`` once :meth:`op` has seen one (ok counts are the lengths of the
        latency arrays).
        """
        self.events = events
        if first_time is not None and (self.first_time is None or first_time < self.first_time):
            self.first_time = first_time
        if last_time is not None and (self.last_time is None or last_time > self.last_time):
            self.last_time = last_time

    def to_dict(self) -> dict[str, Any]:
        # An ok op is counted by its latency entry (see op and seen).
        by_f = {f: {**c, "ok": len(self.latency.get(f, ()))} for f, c in self.by_f.items()}
        by_type = {"ok": 0, "fail": 0, "info": 0}
        for counts in by_f.values():
            for k, n in counts.items():
                by_type[k] += n
        ops = sum(by_type.values())
        duration = 0.0
        if self.first_time is not None and self.last_time is not None:
            duration = max(0, self.last_time - self.first_time) / 1e9
        latency: dict[str, dict[str, float]] = {}
        for f, values in sorted(self.latency.items()):
            ordered: Sequence[int]
            if _sort_q is None:
                ordered = values.tolist()
                ordered.sort()
            else:
                ordered = array("q", values)
                _sort_q(ordered)
            entry: dict[str, float] = {"count": len(ordered)}
            for name, q in _QUANTILES:
                entry[name] = quantile(ordered, q) / 1e6
            entry["max"] = ordered[-1] / 1e6
            latency[f] = entry
        return {
            "ops": ops,
            "events": self.events,
            "by_type": by_type,
            "by_f": dict(sorted(by_f.items())),
            "incomplete": self.incomplete,
            "observations": dict(sorted(self.observed.items())),
            "duration_s": duration,
            "throughput_ok_per_s": by_type["ok"] / duration if duration > 0 else 0.0,
            "latency_ms": latency,
        }
