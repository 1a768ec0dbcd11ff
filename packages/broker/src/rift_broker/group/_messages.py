"""Values crossing the coordinator's boundary: request parts, replies, appends, views.

Every reply names the ``request_id`` the driver gave the request; the coordinator gives
exactly one reply per request id, sooner (in the list the request call returns) or
later (from ``tick``, ``on_appended``, another request or ``unload``). An
:class:`Append` asks the driver to write records to ``__consumer_offsets`` and to
report back with ``on_appended(append_id=...)`` once they are durable (committed by
the partition's ISR) or have failed. ``error`` fields are Kafka wire codes (ints; see
:class:`~rift_broker.group.GroupErrorCode`).
"""

from __future__ import annotations

from dataclasses import dataclass

from rift_broker.group._records import OffsetsRecord

__all__ = [
    "JoinProtocol",
    "JoinMember",
    "JoinReply",
    "SyncReply",
    "HeartbeatReply",
    "LeaveMemberResult",
    "LeaveReply",
    "OffsetCommitEntry",
    "CommitPartitionResult",
    "CommitReply",
    "FetchedOffset",
    "FetchReply",
    "Reply",
    "Append",
    "Output",
    "MemberView",
    "GroupView",
]

# -- request parts ---------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class JoinProtocol:
    """One protocol a joining member supports (e.g. ``range``) and its metadata."""

    name: str
    metadata: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class OffsetCommitEntry:
    """One partition of an OffsetCommit request."""

    topic: str
    partition: int
    offset: int
    leader_epoch: int = -1  # v6+; -1 when the client does not send it
    metadata: str | None = ""


# -- replies ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class JoinMember:
    """A member as the leader sees it in its JoinGroup response."""

    member_id: str
    metadata: bytes
    group_instance_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class JoinReply:
    """JoinGroup response. ``members`` is non-empty only in the leader's reply."""

    request_id: int
    error: int
    generation_id: int = -1
    protocol_name: str = ""
    leader: str = ""
    member_id: str = ""
    members: tuple[JoinMember, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncReply:
    """SyncGroup response: this member's assignment (empty on error)."""

    request_id: int
    error: int
    assignment: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatReply:
    request_id: int
    error: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaveMemberResult:
    member_id: str
    error: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaveReply:
    """LeaveGroup response. v0-2 carry one member: answer its error at the top level."""

    request_id: int
    error: int
    members: tuple[LeaveMemberResult, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CommitPartitionResult:
    topic: str
    partition: int
    error: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CommitReply:
    """OffsetCommit response, one result per requested partition in request order."""

    request_id: int
    partitions: tuple[CommitPartitionResult, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchedOffset:
    """One partition of an OffsetFetch response; offset -1 when nothing is committed."""

    topic: str
    partition: int
    offset: int
    leader_epoch: int = -1
    metadata: str = ""
    error: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchReply:
    """OffsetFetch response. ``error`` is the top-level error (v2+); v1 has none, and
    then the driver reports it per partition (the partitions listed carry it too)."""

    request_id: int
    error: int
    partitions: tuple[FetchedOffset, ...] = ()


Reply = JoinReply | SyncReply | HeartbeatReply | LeaveReply | CommitReply | FetchReply


@dataclass(frozen=True, slots=True, kw_only=True)
class Append:
    """Records for the driver to append, as one batch, to ``__consumer_offsets``."""

    append_id: int
    partition: int
    records: tuple[OffsetsRecord, ...]


Output = Reply | Append


# -- introspection ---------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberView:
    member_id: str
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    assignment: bytes | None  # None: no live assignment (a rebalance is under way)
    awaiting_join: bool
    awaiting_sync: bool
    metadata: bytes = b""  # the member's subscription for the group's protocol


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupView:
    """A snapshot of one group (for tests, DescribeGroups and logs)."""

    group_id: str
    state: str
    generation: int
    protocol_type: str | None
    protocol: str | None
    leader: str | None
    members: tuple[MemberView, ...]
    pending_members: tuple[str, ...]
