"""The simulated network: per-link latency, loss, duplication, reordering, partitions.

Messages between nodes are delivered after a latency drawn per message, so two
messages on one link can overtake each other (reordering). Loss and duplication are
per-message probabilities. Partitions use the same *grudge* shape as real runs: for
each node, the set of nodes whose packets it drops; like iptables INPUT rules, a
grudge is checked when the message *arrives*, so a message in flight when the
partition starts is lost too. All randomness comes from the ``rng`` given.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkFaults:
    """Message-level behaviour of every link. Probabilities are in [0, 1]."""

    min_latency_ms: int = 1
    max_latency_ms: int = 5
    loss: float = 0.0
    duplicate: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.min_latency_ms <= self.max_latency_ms:
            raise ValueError(
                "latency must satisfy 0 <= min <= max, got "
                f"{self.min_latency_ms}..{self.max_latency_ms}"
            )
        for name in ("loss", "duplicate"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {p}")


class SimNetwork:
    """Decides, for each message sent, when (and how many times) it arrives."""

    def __init__(self, *, rng: random.Random, faults: LinkFaults | None = None) -> None:
        self._rng = rng
        self.faults = faults or LinkFaults()
        self._grudge: dict[str, frozenset[str]] = {}

    def set_grudge(self, grudge: Mapping[str, frozenset[str] | set[str]]) -> None:
        """Replace the partition: ``grudge[dst]`` is the set of sources ``dst`` drops."""
        self._grudge = {dst: frozenset(srcs) for dst, srcs in grudge.items() if srcs}

    def heal(self) -> None:
        self._grudge = {}

    @property
    def grudge(self) -> dict[str, frozenset[str]]:
        return dict(self._grudge)

    def delays(self, *, src: str, dst: str) -> list[int]:
        """Latencies (ms) of the copies of one message that will be in flight (maybe none)."""
        if src == dst:
            return [0]
        f = self.faults
        if f.loss and self._rng.random() < f.loss:
            return []
        copies = 2 if f.duplicate and self._rng.random() < f.duplicate else 1
        return [self._rng.randint(f.min_latency_ms, f.max_latency_ms) for _ in range(copies)]

    def blocked(self, *, src: str, dst: str) -> bool:
        """Whether ``dst`` drops packets from ``src`` right now (checked on arrival)."""
        return src in self._grudge.get(dst, frozenset())
