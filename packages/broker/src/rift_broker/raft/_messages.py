"""Values that cross the Raft core's boundary: log entries, durable state, messages.

Every message names its sender (``src``), its recipient (``dst``) and the sender's
``term``. The core never interprets ``src``/``dst`` beyond matching them against
its voter set; the driver routes by ``dst``.

Pre-vote messages carry the term the sender *would* campaign in (its current term
plus one) without anyone adopting it; a granted pre-vote response echoes that term,
a rejection carries the responder's own term (etcd/raft's convention).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "NOOP",
    "Entry",
    "HardState",
    "Snapshot",
    "PersistentState",
    "PreVoteRequest",
    "PreVoteResponse",
    "VoteRequest",
    "VoteResponse",
    "AppendEntries",
    "AppendEntriesResponse",
    "InstallSnapshot",
    "InstallSnapshotResponse",
    "Message",
]

#: The command of the no-op entry a new leader appends to commit earlier terms'
#: entries. Drivers skip it when applying; ``propose`` refuses an empty command.
NOOP = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One log entry. ``command == NOOP`` marks a leader's no-op."""

    term: int
    index: int
    command: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class HardState:
    """What must be durable before any message that depends on it is sent.

    Invariant (checked by the stores): ``term`` never decreases, and within one
    term ``voted_for`` changes at most once, from ``None`` to a node id.
    """

    term: int = 0
    voted_for: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """The state machine's image after applying every entry up to ``index``."""

    index: int
    term: int
    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class PersistentState:
    """Everything a node reads back at restart: hard state, snapshot, log suffix.

    ``entries`` are the stored entries after ``snapshot.index`` (or from index 1
    without a snapshot), contiguous and in index order.
    """

    hard_state: HardState = HardState()
    snapshot: Snapshot | None = None
    entries: tuple[Entry, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PreVoteRequest:
    src: int
    dst: int
    term: int  # the term the sender would campaign in; nobody adopts it
    last_log_index: int
    last_log_term: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PreVoteResponse:
    src: int
    dst: int
    term: int  # the request's term if granted, else the responder's term
    granted: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class VoteRequest:
    src: int
    dst: int
    term: int
    last_log_index: int
    last_log_term: int


@dataclass(frozen=True, slots=True, kw_only=True)
class VoteResponse:
    src: int
    dst: int
    term: int
    granted: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendEntries:
    src: int
    dst: int
    term: int
    prev_log_index: int
    prev_log_term: int
    entries: tuple[Entry, ...]
    commit: int  # the leader's commit index


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendEntriesResponse:
    src: int
    dst: int
    term: int
    success: bool
    match_index: int  # on success: the follower's log matches the leader's up to here
    hint: int  # on rejection: where the leader should probe next (a next index)


@dataclass(frozen=True, slots=True, kw_only=True)
class InstallSnapshot:
    src: int
    dst: int
    term: int
    snapshot: Snapshot


@dataclass(frozen=True, slots=True, kw_only=True)
class InstallSnapshotResponse:
    src: int
    dst: int
    term: int
    match_index: int


Message = (
    PreVoteRequest
    | PreVoteResponse
    | VoteRequest
    | VoteResponse
    | AppendEntries
    | AppendEntriesResponse
    | InstallSnapshot
    | InstallSnapshotResponse
)
