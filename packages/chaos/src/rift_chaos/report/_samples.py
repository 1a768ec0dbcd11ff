"""What the report plots, extracted from a history and a nemesis timeline.

An :class:`OpSample` is one completed client operation: when it was invoked, when it
completed and how (ok / fail / info). Operations still open at the end of the
history (a process that crashed mid-call) are plotted as ``info`` ending at the last
timestamp seen. A :class:`FaultWindow` is a span of time during which a fault was in
force, built from the nemesis timeline's start/end events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class OpSample:
    f: str
    type: str  # ok | fail | info
    start_ns: int
    end_ns: int

    @property
    def latency_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultWindow:
    kind: str
    description: str
    start_ns: int
    end_ns: int


def op_samples(history: Iterable[Mapping[str, Any]]) -> list[OpSample]:
    """Pair each client invocation with its process's next completion."""
    open_ops: dict[Any, Mapping[str, Any]] = {}
    samples: list[OpSample] = []
    last_ns = 0
    for op in history:
        kind = op.get("type")
        process = op.get("process")
        time_ns = int(op.get("time", 0))
        last_ns = max(last_ns, time_ns)
        if process == "nemesis" or kind not in ("invoke", "ok", "fail", "info"):
            continue
        if kind == "invoke":
            open_ops[process] = op
            continue
        start = open_ops.pop(process, None)
        if start is None:
            continue
        samples.append(
            OpSample(
                f=str(start.get("f")),
                type=str(kind),
                start_ns=int(start.get("time", 0)),
                end_ns=time_ns,
            )
        )
    for start in open_ops.values():
        samples.append(
            OpSample(
                f=str(start.get("f")),
                type="info",
                start_ns=int(start.get("time", 0)),
                end_ns=last_ns,
            )
        )
    samples.sort(key=lambda s: (s.start_ns, s.end_ns))
    return samples


def fault_windows(timeline: Iterable[Mapping[str, Any]], *, end_ns: int) -> list[FaultWindow]:
    """Turn nemesis events into windows.

    Accepted event shapes: ``{"time", "phase": "start"|"end", "kind", "description"}``
    (one window from a start to the next end of the same kind; a start without an end
    lasts until ``end_ns``), or ``{"start", "end", "kind", "description"}`` directly.
    """
    windows: list[FaultWindow] = []
    started: dict[str, tuple[int, str]] = {}
    for event in timeline:
        kind = str(event.get("kind", "fault"))
        description = str(event.get("description", kind))
        if "start" in event and "end" in event:
            windows.append(
                FaultWindow(
                    kind=kind,
                    description=description,
                    start_ns=int(event["start"]),
                    end_ns=int(event["end"] if event["end"] is not None else end_ns),
                )
            )
            continue
        phase = event.get("phase")
        time_ns = int(event.get("time", 0))
        if phase == "start":
            started[kind] = (time_ns, description)
        elif phase == "end" and kind in started:
            begin, text = started.pop(kind)
            windows.append(FaultWindow(kind=kind, description=text, start_ns=begin, end_ns=time_ns))
    for kind, (begin, text) in started.items():
        windows.append(FaultWindow(kind=kind, description=text, start_ns=begin, end_ns=end_ns))
    windows.sort(key=lambda w: (w.start_ns, w.kind))
    return windows
