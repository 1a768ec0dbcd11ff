"""One member of a group as the coordinator tracks it, and the protocol vote.

A member is alive while it has a JoinGroup or SyncGroup waiting for an answer (the
rebalance timeout bounds those) or while its session deadline lies ahead; every
heartbeat, join, sync and accepted commit moves the deadline to ``now +
session_timeout_ms``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Member", "select_protocol"]


@dataclass(slots=True, kw_only=True)
class Member:
    member_id: str
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocols: tuple[tuple[str, bytes], ...]  # (name, metadata) in preference order
    deadline_ms: int
    assignment: bytes | None = None  # live only while the group is Stable
    join_request: int | None = None  # request id of the JoinGroup awaiting an answer
    sync_request: int | None = None  # request id of the SyncGroup awaiting an answer

    @property
    def awaiting(self) -> bool:
        return self.join_request is not None or self.sync_request is not None

    def protocol_names(self) -> list[str]:
        return [name for name, _ in self.protocols]

    def metadata_for(self, protocol: str | None) -> bytes:
        for name, metadata in self.protocols:
            if name == protocol:
                return metadata
        return b""

    def matches(self, protocols: tuple[tuple[str, bytes], ...]) -> bool:
        return self.protocols == protocols

    def heard_from(self, now_ms: int) -> None:
        self.deadline_ms = now_ms + self.session_timeout_ms

    def expired(self, now_ms: int) -> bool:
        return not self.awaiting and now_ms >= self.deadline_ms


def candidate_protocols(members: Iterable[Member]) -> list[str]:
    """Protocols every member supports, in the first member's order of preference."""
    names: list[str] | None = None
    for m in members:
        mine = m.protocol_names()
        names = mine if names is None else [n for n in names if n in mine]
    return names or []


def select_protocol(members: Iterable[Member]) -> str:
    """Kafka's vote: each member votes for its most preferred candidate; most votes win.

    Ties go to the candidate the first member (in join order) prefers, so the choice is
    deterministic. The caller guarantees a candidate exists (joins are checked).
    """
    members = list(members)
    candidates = candidate_protocols(members)
    if not candidates:
        raise ValueError("no protocol is supported by every member")
    votes = Counter(next(n for n in m.protocol_names() if n in candidates) for m in members)
    return max(candidates, key=lambda name: votes[name])
