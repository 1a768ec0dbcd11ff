"""Cluster metadata on top of the Raft quorum: records, the image, the controller.

* ``_records``: the metadata records (the Raft log's commands) and their encoding;
* ``_image``: ``MetadataImage``, the state machine every broker follows;
* ``_election``: pure functions — does a partition need a leader, whom to elect,
  what fencing a broker does to its partitions, is an ISR change acceptable;
* ``_sessions``, ``_placement``: heartbeat sessions, replica placement;
* ``_controller``: ``Controller``, the sans-IO active controller.

The metadata state machine lives here (not in ``rift_broker.raft``), so the Raft
core stays a generic replicated log of opaque commands.
"""

from __future__ import annotations

from rift_broker.controller._controller import (
    AlterPartitionReply,
    Controller,
    ControllerConfig,
    CreateTopicReply,
    CreateTopicRequest,
    Decision,
    HeartbeatReply,
    HeartbeatRequest,
    RegisterReply,
    RegisterRequest,
)
from rift_broker.controller._election import (
    AlterPartitionRequest,
    ErrorCode,
    alter_partition,
    choose_leader,
    elect,
    needs_election,
    remove_from_isr,
)
from rift_broker.controller._image import BrokerInfo, MetadataImage, PartitionInfo, TopicInfo
from rift_broker.controller._placement import place_replicas
from rift_broker.controller._records import (
    NO_LEADER,
    CreateTopic,
    FenceBroker,
    MetadataRecord,
    PartitionChange,
    PartitionRecord,
    RegisterBroker,
    UnfenceBroker,
    decode_record,
    decode_records,
    encode_record,
    encode_records,
)
from rift_broker.controller._sessions import BrokerSessions

__all__ = [
    # records
    "NO_LEADER",
    "MetadataRecord",
    "RegisterBroker",
    "FenceBroker",
    "UnfenceBroker",
    "CreateTopic",
    "PartitionRecord",
    "PartitionChange",
    "encode_record",
    "decode_record",
    "encode_records",
    "decode_records",
    # the image
    "MetadataImage",
    "BrokerInfo",
    "TopicInfo",
    "PartitionInfo",
    # pure decisions
    "ErrorCode",
    "needs_election",
    "choose_leader",
    "elect",
    "remove_from_isr",
    "AlterPartitionRequest",
    "alter_partition",
    "place_replicas",
    "BrokerSessions",
    # the controller
    "Controller",
    "ControllerConfig",
    "Decision",
    "RegisterRequest",
    "RegisterReply",
    "HeartbeatRequest",
    "HeartbeatReply",
    "CreateTopicRequest",
    "CreateTopicReply",
    "AlterPartitionReply",
]
