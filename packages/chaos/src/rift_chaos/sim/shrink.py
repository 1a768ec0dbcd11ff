"""Shrinking a failing scenario: fewer faults, fewer client operations, still failing.

A shrunk scenario is the seed's scenario with some faults and client operations
left out, named by the indexes it keeps, so it replays from one line::

    chaos sim --seed 42 --keep-faults 0,3 --keep-ops 0-5,9

The search is delta debugging (Zeller's ddmin, the complement-removal half): try
removing chunks of the kept faults (then of the kept operations), halving the chunk
size whenever no chunk can go, and keep any removal after which the scenario still
fails. The seed stays the same, so the network and the nodes draw from the same
generators; a removal shifts what they draw, so a smaller scenario can fail
differently or pass — the search simply keeps what still fails. It stops after
``budget`` runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rift_chaos.sim.scenario import Scenario

__all__ = ["Shrunk", "format_indexes", "parse_indexes", "restrict", "shrink"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Shrunk:
    scenario: Scenario
    faults: tuple[int, ...]
    ops: tuple[int, ...]
    runs: int

    def replay_args(self) -> str:
        return f"--keep-faults {format_indexes(self.faults)} --keep-ops {format_indexes(self.ops)}"


def restrict(scenario: Scenario, *, faults: Sequence[int], ops: Sequence[int]) -> Scenario:
    """``scenario`` keeping only the faults and operations at these indexes."""
    for name, keep, full in (("fault", faults, scenario.faults), ("op", ops, scenario.ops)):
        bad = [i for i in keep if not 0 <= i < len(full)]
        if bad:
            raise ValueError(f"{name} index {bad[0]} out of range (the scenario has {len(full)})")
    return scenario.without(
        faults=tuple(scenario.faults[i] for i in sorted(set(faults))),
        ops=tuple(scenario.ops[i] for i in sorted(set(ops))),
    )


def shrink(scenario: Scenario, fails: Callable[[Scenario], bool], *, budget: int = 80) -> Shrunk:
    """The smallest restriction of ``scenario`` found for which ``fails`` holds."""
    faults = list(range(len(scenario.faults)))
    ops = list(range(len(scenario.ops)))
    runs = 0

    def still_fails(f: list[int], o: list[int]) -> bool:
        nonlocal runs
        runs += 1
        return fails(restrict(scenario, faults=f, ops=o))

    def ddmin(items: list[int], test: Callable[[list[int]], bool]) -> list[int]:
        chunks = 2
        while items and runs < budget:
            size = max(1, len(items) // chunks)
            removed = False
            for start in range(0, len(items), size):
                if runs >= budget:
                    break
                candidate = items[:start] + items[start + size :]
                if test(candidate):
                    items = candidate
                    chunks = max(chunks - 1, 2)
                    removed = True
                    break
            if not removed:
                if size == 1:
                    break
                chunks = min(len(items), chunks * 2)
        return items

    faults = ddmin(faults, lambda f: still_fails(f, ops))
    ops = ddmin(ops, lambda o: still_fails(faults, o))
    return Shrunk(
        scenario=restrict(scenario, faults=faults, ops=ops),
        faults=tuple(faults),
        ops=tuple(ops),
        runs=runs,
    )


def format_indexes(indexes: Sequence[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` as ``0-2,5,7-8``; none as ``none``."""
    if not indexes:
        return "none"
    parts: list[str] = []
    items = sorted(indexes)
    start = prev = items[0]
    for i in [*items[1:], None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    return ",".join(parts)


def parse_indexes(text: str) -> list[int]:
    """The inverse of :func:`format_indexes`."""
    if text.strip() in ("", "none"):
        return []
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        try:
            first, last = int(lo), int(hi or lo)
        except ValueError:
            raise ValueError(f"bad index range {part!r}: use e.g. 0-3,7") from None
        out.extend(range(first, last + 1))
    return out
