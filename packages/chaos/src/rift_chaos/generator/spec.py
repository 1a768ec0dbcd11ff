"""What a schedule is generated from: the client load and the nemesis plan.

These values are the ``client`` and ``nemesis`` sections of a workload. They check
their own ranges, so one built in code is as valid as one read from YAML; an error
names the field as it is spelled in the workload file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from rift_chaos.errors import InvalidWorkload

__all__ = [
    "CLIENT_FS",
    "NEMESIS_KINDS",
    "PARTITION_KINDS",
    "SCHEDULES",
    "TARGETS",
    "ClientSpec",
    "NemesisSpec",
]

#: Operations a workload's mix may draw. The runner adds ``final-read`` at the end.
CLIENT_FS = ("send", "poll", "assign", "subscribe", "commit")

PARTITION_KINDS = (
    "partition-halves",
    "partition-random-halves",
    "partition-random-node",
    "partition-leader",
    "partition-majorities-ring",
    "partition-bridge",
    "partition-one-way",
)
NEMESIS_KINDS = (*PARTITION_KINDS, "kill", "pause", "clock")

#: alternate: fault for one interval, healed for the next; random: both durations
#: drawn from [0.5, 1.5] x interval; none: no faults at all.
SCHEDULES = ("alternate", "random", "none")

#: Which nodes kill / pause / clock faults hit.
TARGETS = ("one", "minority", "majority", "all", "leader")


def _positive(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise InvalidWorkload(f"{name}: must be a positive number, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientSpec:
    """``concurrency`` workers issue ``rate`` operations per second in total, drawn by ``mix``."""

    concurrency: int = 5
    rate: float = 50.0
    mix: Mapping[str, float] = field(default_factory=lambda: {"send": 0.8, "poll": 0.2})
    timeout: float = 5.0

    def __post_init__(self) -> None:
        if not isinstance(self.concurrency, int) or self.concurrency < 1:
            raise InvalidWorkload(
                f"client.concurrency: must be an integer >= 1, got {self.concurrency!r}"
            )
        _positive("client.rate", self.rate)
        _positive("client.timeout", self.timeout)
        if not self.mix:
            raise InvalidWorkload("client.mix: must name at least one operation")
        for f, weight in self.mix.items():
            if f not in CLIENT_FS:
                raise InvalidWorkload(
                    f"client.mix.{f}: unknown operation; use {', '.join(CLIENT_FS)}"
                )
            _positive(f"client.mix.{f}", weight)


@dataclass(frozen=True, slots=True, kw_only=True)
class NemesisSpec:
    """Which faults, how often, against which nodes."""

    kinds: tuple[str, ...] = ()
    interval: float = 10.0
    schedule: str = "alternate"
    targets: str = "one"
    max_clock_offset: float = 60.0

    def __post_init__(self) -> None:
        for kind in self.kinds:
            if kind not in NEMESIS_KINDS:
                raise InvalidWorkload(
                    f"nemesis.kinds: unknown kind {kind!r}; use {', '.join(NEMESIS_KINDS)}"
                )
        if len(set(self.kinds)) != len(self.kinds):
            raise InvalidWorkload("nemesis.kinds: a kind is listed twice")
        _positive("nemesis.interval", self.interval)
        if self.schedule not in SCHEDULES:
            raise InvalidWorkload(
                f"nemesis.schedule: must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}"
            )
        if self.targets not in TARGETS:
            raise InvalidWorkload(
                f"nemesis.targets: must be one of {', '.join(TARGETS)}, got {self.targets!r}"
            )
        _positive("nemesis.max_clock_offset", self.max_clock_offset)

    @property
    def active(self) -> bool:
        """Whether this plan injects any fault at all."""
        return bool(self.kinds) and self.schedule != "none"
