"""The nemesis timeline: when each fault started and ended.

Nemeses record a ``start`` event when a fault takes effect and an ``end`` event when
it is healed. Faults are keyed by ``(kind, node)`` for per-node faults (a kill, a
pause, a clock offset) and by ``kind`` alone for a partition, so :meth:`windows`
pairs each start with its end, and a fault still in force has ``end=None``.
The report shades these windows on its latency and throughput plots.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["FaultEvent", "FaultWindow", "Timeline"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultEvent:
    time: int  # ns since the start of the run
    kind: str  # partition | kill | pause | clock
    phase: Literal["start", "end"]
    node: str | None = None  # None for cluster-wide faults (partitions)
    value: Any = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"time": self.time, "kind": self.kind, "phase": self.phase}
        if self.node is not None:
            out["node"] = self.node
        if self.value is not None:
            out["value"] = self.value
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultWindow:
    kind: str
    start: int
    end: int | None
    node: str | None = None
    value: Any = None


class Timeline:
    """An append-only list of fault events (not thread-safe: one nemesis thread)."""

    def __init__(self) -> None:
        self._events: list[FaultEvent] = []
        self._open: dict[tuple[str, str | None], FaultEvent] = {}

    @property
    def events(self) -> tuple[FaultEvent, ...]:
        return tuple(self._events)

    def start(self, kind: str, *, time: int, node: str | None = None, value: Any = None) -> None:
        """Record that a fault took effect. Re-starting an open fault ends it first."""
        key = (kind, node)
        if key in self._open:
            self.end(kind, time=time, node=node)
        event = FaultEvent(time=time, kind=kind, phase="start", node=node, value=value)
        self._events.append(event)
        self._open[key] = event

    def end(self, kind: str, *, time: int, node: str | None = None) -> bool:
        """Record that a fault was healed; ``False`` (and nothing recorded) if none was open."""
        if self._open.pop((kind, node), None) is None:
            return False
        self._events.append(FaultEvent(time=time, kind=kind, phase="end", node=node))
        return True

    def end_all(self, *, time: int, kind: str | None = None) -> None:
        """End every open fault (of ``kind``, if given)."""
        for k, node in sorted(self._open, key=lambda key: (key[0], key[1] or "")):
            if kind is None or k == kind:
                self.end(k, time=time, node=node)

    def active(self) -> list[FaultWindow]:
        """Faults in force now, oldest first."""
        return [w for w in self.windows() if w.end is None]

    def windows(self) -> list[FaultWindow]:
        """Every fault as a (start, end) window, ordered by start."""
        open_: dict[tuple[str, str | None], FaultEvent] = {}
        out: list[FaultWindow] = []
        for event in self._events:
            key = (event.kind, event.node)
            if event.phase == "start":
                open_[key] = event
                continue
            begun = open_.pop(key)
            out.append(_window(begun, event.time))
        out.extend(_window(begun, None) for begun in open_.values())
        return sorted(out, key=lambda w: (w.start, w.kind, w.node or ""))

    def to_jsonl(self) -> str:
        return "".join(json.dumps(e.to_dict(), sort_keys=True) + "\n" for e in self._events)

    def extend(self, events: Iterable[FaultEvent]) -> None:
        for event in events:
            if event.phase == "start":
                self.start(event.kind, time=event.time, node=event.node, value=event.value)
            else:
                self.end(event.kind, time=event.time, node=event.node)


def _window(begun: FaultEvent, end: int | None) -> FaultWindow:
    return FaultWindow(
        kind=begun.kind, start=begun.time, end=end, node=begun.node, value=begun.value
    )
