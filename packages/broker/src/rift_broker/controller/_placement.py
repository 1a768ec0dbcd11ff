"""Replica placement for new topics: round-robin across live brokers.

Partition ``p``'s first replica — its preferred leader — is the broker at
position ``start + p`` of the sorted live brokers, so leaders rotate across
brokers. Its followers are the brokers holding the fewest replicas of the topic
so far, ties going to the broker whose turn to lead comes last. Both the leaders and the
replicas of a topic are then spread evenly (each broker within one of the
others). ``start`` rotates between topics so that many single-partition topics
do not all put their leader on the lowest broker id.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["place_replicas"]


def place_replicas(
    brokers: Iterable[int], *, partitions: int, replication_factor: int, start: int = 0
) -> list[tuple[int, ...]]:
    """One replica list per partition; ``ValueError`` if it cannot be done."""
    live = sorted(set(brokers))
    if partitions < 1:
        raise ValueError("a topic needs at least one partition")
    if not 1 <= replication_factor <= len(live):
        raise ValueError(
            f"replication factor {replication_factor} needs that many live brokers "
            f"(there are {len(live)})"
        )
    n = len(live)
    held = [0] * n  # replicas per broker position
    assignment = []
    for p in range(partitions):
        first = (start + p) % n
        ring = [(first + k) % n for k in range(1, n)]
        # Fewest replicas first; among equals the broker whose turn to lead is furthest.
        followers = sorted(ring, key=lambda pos: (held[pos], -ring.index(pos)))
        followers = followers[: replication_factor - 1]
        followers.sort(key=ring.index)
        chosen = [first, *followers]
        for pos in chosen:
            held[pos] += 1
        assignment.append(tuple(live[pos] for pos in chosen))
    return assignment
