"""What a simulated node is, and the context it acts through.

A simulated node is a sans-IO object (DESIGN.md Rule 1). The simulator calls it
with an event — it started, a message arrived, a timer fired — and hands it a
:class:`NodeContext`. Everything the node wants done goes through that context
(send a message, arm a timer, record an observation); the context only *records*
those wishes and the simulator carries them out in virtual time. The node reads the
time from ``ctx.now_ms`` (its own clock, which a clock fault may skew) and draws
randomness from ``ctx.random`` (seeded per node), so a seed fixes everything.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True, kw_only=True)
class Send:
    src: str
    dst: str
    message: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class SetTimer:
    node: str
    name: str
    delay_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """A fact the node reports: ``kind`` like ``"leader"`` or ``"high-watermark"``."""

    node: str
    kind: str
    value: Any


@dataclass(slots=True, kw_only=True)
class NodeContext:
    """The node's window on the world during one event. Effects are recorded, not done."""

    name: str
    now_ms: int
    random: random.Random
    effects: list[Send | SetTimer | Observation] = field(default_factory=list)

    def send(self, dst: str, message: Any) -> None:
        self.effects.append(Send(src=self.name, dst=dst, message=message))

    def set_timer(self, name: str, delay_ms: int) -> None:
        """Arm (or re-arm) the timer ``name``; only its latest arming fires."""
        if delay_ms < 0:
            raise ValueError(f"timer delay must be >= 0, got {delay_ms}")
        self.effects.append(SetTimer(node=self.name, name=name, delay_ms=delay_ms))

    def observe(self, kind: str, value: Any) -> None:
        self.effects.append(Observation(node=self.name, kind=kind, value=value))


class SimNode(Protocol):
    """A sans-IO participant: a server node or a client process.

    Contract: the node changes only in these calls, acts only through ``ctx``, and
    never reads a real clock, real randomness, a socket or a real file. Crash-safety
    is the node's own business: what it wants to survive a crash it must have written
    to its simulated disk *and* synced, exactly as on a real machine.
    """

    def start(self, ctx: NodeContext) -> None:
        """The process started (first boot or a restart after a crash)."""

    def receive(self, ctx: NodeContext, src: str, message: Any) -> None:
        """A message from ``src`` arrived."""

    def timer(self, ctx: NodeContext, name: str) -> None:
        """The timer ``name`` fired."""


class SimSystem(Protocol):
    """Builds the nodes of one simulated cluster and owns their disks.

    ``create`` makes a fresh process for ``name`` on whatever that node's disk holds
    (the simulator calls it at boot and after every crash). ``crash_disk`` loses the
    node's unsynced writes, tearing the last one where ``rng`` says, when the
    simulator kills the node.
    """

    def create(self, name: str) -> SimNode: ...

    def crash_disk(self, name: str, rng: random.Random) -> None: ...
