"""The consumer-group coordinator: Kafka's classic group protocol as a sans-IO core.

The driver owns sockets, the clock and the ``__consumer_offsets`` log; the
:class:`GroupCoordinator` decides. ``_coordinator.py`` states the call contract,
``_group.py`` the rebalance state machine, ``_records.py`` the record format (Kafka's
own) and ``_batches.py`` how they sit in record batches. :class:`MemoryDriver` is the
in-memory driver tests and the simulator use; the asyncio driver of the real broker is
:mod:`rift_broker.server.groups`.

A driver's loop, in short::

    coordinator.load(partition=p, records=log_of(p), now_ms=now)  # became leader of p
    outputs = coordinator.join(request_id=rid, group_id=..., ..., now_ms=now)
    for out in outputs:                     # also from tick / on_appended / unload
        if isinstance(out, Append):         # write as one batch, wait for the HW
            append(out.partition, out.records, then=lambda err: coordinator.on_appended(
                append_id=out.append_id, error=err, now_ms=clock()))
        else:                               # a Reply: answer request out.request_id
            send(out.request_id, out)
    # and call coordinator.tick(now) when now reaches coordinator.next_deadline()

Versions: JoinGroup v0 has no rebalance timeout (pass the session timeout) and v4+
sets ``require_known_member_id``; LeaveGroup v0-2 carry one member; OffsetFetch v1
always lists partitions; FindCoordinator answers the leader of ``partition_for``.
"""

from __future__ import annotations

from rift_broker.group._batches import (
    SkippedRecords,
    decode_batch,
    decode_batches,
    encode_batch,
)
from rift_broker.group._config import GroupConfig
from rift_broker.group._coordinator import GroupCoordinator
from rift_broker.group._errors import GroupErrorCode
from rift_broker.group._group import GroupState
from rift_broker.group._memory import MemoryDriver
from rift_broker.group._messages import (
    Append,
    CommitPartitionResult,
    CommitReply,
    FetchedOffset,
    FetchReply,
    GroupView,
    HeartbeatReply,
    JoinMember,
    JoinProtocol,
    JoinReply,
    LeaveMemberResult,
    LeaveReply,
    MemberView,
    OffsetCommitEntry,
    Output,
    Reply,
    SyncReply,
)
from rift_broker.group._partitioning import (
    OFFSETS_TOPIC,
    OFFSETS_TOPIC_CONFIGS,
    java_string_hash,
    partition_for,
)
from rift_broker.group._records import (
    GroupKey,
    GroupValue,
    MemberValue,
    OffsetKey,
    OffsetsRecord,
    OffsetValue,
    RecordFormatError,
    decode_group_value,
    decode_key,
    decode_offset_value,
    encode_group,
    encode_offset,
)

__all__ = [
    # the core
    "GroupCoordinator",
    "GroupConfig",
    "GroupState",
    "GroupErrorCode",
    "MemoryDriver",
    # request parts
    "JoinProtocol",
    "OffsetCommitEntry",
    # outputs
    "Output",
    "Reply",
    "JoinReply",
    "JoinMember",
    "SyncReply",
    "HeartbeatReply",
    "LeaveReply",
    "LeaveMemberResult",
    "CommitReply",
    "CommitPartitionResult",
    "FetchReply",
    "FetchedOffset",
    "Append",
    # introspection
    "GroupView",
    "MemberView",
    # FindCoordinator
    "OFFSETS_TOPIC",
    "OFFSETS_TOPIC_CONFIGS",
    "partition_for",
    "java_string_hash",
    # __consumer_offsets records
    "OffsetsRecord",
    "OffsetKey",
    "OffsetValue",
    "GroupKey",
    "GroupValue",
    "MemberValue",
    "RecordFormatError",
    "encode_offset",
    "encode_group",
    "decode_key",
    "decode_offset_value",
    "decode_group_value",
    # records <-> record batches of the partition logs
    "encode_batch",
    "decode_batches",
    "decode_batch",
    "SkippedRecords",
]
