"""Settings, roles and small result values of the Raft core."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from rift_broker.raft._messages import Entry, HardState, Message, Snapshot

__all__ = ["NotLeader", "RaftConfig", "Ready", "Role"]


class Role(enum.Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


@dataclass(frozen=True, slots=True, kw_only=True)
class RaftConfig:
    """Timing and sizing of one node.

    ``election_timeout_ms`` is the *minimum* election timeout: the check-quorum
    period of a leader and the lease during which a follower that heard from its
    leader ignores (pre-)vote requests. The driver's randomised timeouts (see
    ``RaftNode``'s ``next_timeout``) must be at least this long; ``[T, 2T)`` is
    the classic choice.
    """

    election_timeout_ms: int = 1000
    heartbeat_interval_ms: int = 100
    max_entries_per_message: int = 64
    #: Advise a snapshot (``Ready.snapshot_due``) once this many entries were
    #: applied since the last one; 0 disables the advice.
    snapshot_threshold: int = 1024
    pre_vote: bool = True
    check_quorum: bool = True

    def __post_init__(self) -> None:
        if self.heartbeat_interval_ms <= 0:
            raise ValueError("heartbeat_interval_ms must be positive")
        if self.election_timeout_ms <= self.heartbeat_interval_ms:
            raise ValueError("election_timeout_ms must exceed heartbeat_interval_ms")
        if self.max_entries_per_message <= 0:
            raise ValueError("max_entries_per_message must be positive")
        if self.snapshot_threshold < 0:
            raise ValueError("snapshot_threshold must be >= 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class NotLeader:
    """``propose`` on a node that is not the leader; ``leader_id`` may be a hint."""

    leader_id: int | None
    term: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Ready:
    """One batch of outputs. The driver handles Readys strictly in order, and each
    one in exactly this order:

    1. **persist**, durably (fsync) and before anything else:
       ``snapshot`` if set (store it, then discard the *whole* stored log: the log
       restarts right after ``snapshot.index``); then ``entries`` (delete stored
       entries with index >= ``entries[0].index``, then append these); then
       ``hard_state`` if set;
    2. **send** ``messages`` (they may depend on step 1: a vote, an ack);
    3. **apply**: if ``snapshot`` is set, restore the state machine from it; then
       apply ``committed`` in order, skipping ``NOOP`` commands;
    4. optionally, if ``snapshot_due`` is set, snapshot the state machine (whose
       applied index is then ``snapshot_due``) and call ``RaftNode.compact``.

    A crash at any point is safe: whatever was not persisted was never sent.
    """

    hard_state: HardState | None = None
    snapshot: Snapshot | None = None
    entries: tuple[Entry, ...] = ()
    messages: tuple[Message, ...] = ()
    committed: tuple[Entry, ...] = ()
    snapshot_due: int | None = None

    @property
    def empty(self) -> bool:
        return (
            self.hard_state is None
            and self.snapshot is None
            and not self.entries
            and not self.messages
            and not self.committed
            and self.snapshot_due is None
        )
