"""Broker-to-controller calls, and the registry of every cluster wire type.

A broker talks to the active controller with :class:`ControllerCall` and gets a
:class:`ControllerReply` carrying the same ``call_id``. The request and reply
values are the controller core's own (``rift_broker.controller``). A reply that
does not come within the call timeout is given up on; the broker retries on its
own schedule (registration, heartbeats) or reports the outcome as unknown
(topic creation).
"""

from __future__ import annotations

from dataclasses import dataclass

from rift_broker.cluster.wire import MessageCodec
from rift_broker.controller import (
    AlterPartitionReply,
    AlterPartitionRequest,
    BrokerInfo,
    CreateTopicReply,
    CreateTopicRequest,
    HeartbeatReply,
    HeartbeatRequest,
    PartitionInfo,
    RegisterReply,
    RegisterRequest,
)
from rift_broker.raft import (
    AppendEntries,
    AppendEntriesResponse,
    Entry,
    InstallSnapshot,
    InstallSnapshotResponse,
    PreVoteRequest,
    PreVoteResponse,
    Snapshot,
    VoteRequest,
    VoteResponse,
)
from rift_broker.replication.messages import (
    EpochAnswer,
    EpochQuery,
    ReplicaFetchRequest,
    ReplicaFetchResponse,
)

ControllerRequest = RegisterRequest | HeartbeatRequest | CreateTopicRequest | AlterPartitionRequest
ControllerAnswer = RegisterReply | HeartbeatReply | CreateTopicReply | AlterPartitionReply


@dataclass(frozen=True, slots=True, kw_only=True)
class ControllerCall:
    src: int
    dst: int
    call_id: int
    request: ControllerRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class ControllerReply:
    src: int
    dst: int
    call_id: int
    reply: ControllerAnswer


def cluster_codec() -> MessageCodec:
    """The codec for everything nodes of a cluster send each other."""
    return MessageCodec(
        [
            # Raft
            AppendEntries,
            AppendEntriesResponse,
            Entry,
            InstallSnapshot,
            InstallSnapshotResponse,
            PreVoteRequest,
            PreVoteResponse,
            Snapshot,
            VoteRequest,
            VoteResponse,
            # broker <-> controller
            ControllerCall,
            ControllerReply,
            RegisterRequest,
            RegisterReply,
            HeartbeatRequest,
            HeartbeatReply,
            CreateTopicRequest,
            CreateTopicReply,
            AlterPartitionRequest,
            AlterPartitionReply,
            PartitionInfo,
            BrokerInfo,
            # replication
            ReplicaFetchRequest,
            ReplicaFetchResponse,
            EpochQuery,
            EpochAnswer,
        ]
    )
