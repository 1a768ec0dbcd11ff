"""A group to and from its ``__consumer_offsets`` record, and its read-only view.

The stored value is what Kafka stores: each member's subscription is its metadata for
the selected protocol only, so a loaded member knows just that one protocol (it sent
that protocol's metadata, and it rejoins with all of them anyway on a rebalance).
"""

from __future__ import annotations

from collections.abc import Mapping

from rift_broker.group._config import GroupConfig
from rift_broker.group._group import Group, GroupState
from rift_broker.group._member import Member
from rift_broker.group._messages import GroupView, MemberView
from rift_broker.group._records import GroupValue, MemberValue

__all__ = ["group_from_value", "group_to_value", "group_view"]


def group_from_value(group_id: str, config: GroupConfig, value: GroupValue, now_ms: int) -> Group:
    """The group a loaded record describes: Stable with fresh sessions, or Empty."""
    group = Group(group_id, config, generation=value.generation)
    group.protocol_type = value.protocol_type or None
    if not value.members:
        return group
    group.state = GroupState.STABLE
    group.protocol = value.protocol
    for m in value.members:
        group.members[m.member_id] = Member(
            member_id=m.member_id,
            client_id=m.client_id,
            client_host=m.client_host,
            session_timeout_ms=m.session_timeout_ms,
            rebalance_timeout_ms=m.rebalance_timeout_ms,
            protocols=((value.protocol or "", m.subscription),),
            deadline_ms=now_ms + m.session_timeout_ms,
            assignment=m.assignment,
        )
    group.leader = value.leader if value.leader in group.members else next(iter(group.members))
    return group


def group_to_value(group: Group, assignments: Mapping[str, bytes], now_ms: int) -> GroupValue:
    """The record value storing ``group`` with ``assignments``."""
    members = tuple(
        MemberValue(
            member_id=m.member_id,
            client_id=m.client_id,
            client_host=m.client_host,
            rebalance_timeout_ms=m.rebalance_timeout_ms,
            session_timeout_ms=m.session_timeout_ms,
            subscription=m.metadata_for(group.protocol),
            assignment=assignments.get(m.member_id, b""),
        )
        for m in group.members.values()
    )
    return GroupValue(
        protocol_type=group.protocol_type or "",
        generation=group.generation,
        protocol=group.protocol,
        leader=group.leader,
        state_timestamp_ms=now_ms,
        members=members,
    )


def group_view(group: Group) -> GroupView:
    members = tuple(
        MemberView(
            member_id=m.member_id,
            client_id=m.client_id,
            client_host=m.client_host,
            session_timeout_ms=m.session_timeout_ms,
            rebalance_timeout_ms=m.rebalance_timeout_ms,
            assignment=m.assignment,
            awaiting_join=m.join_request is not None,
            awaiting_sync=m.sync_request is not None,
            metadata=m.metadata_for(group.protocol),
        )
        for m in group.members.values()
    )
    return GroupView(
        group_id=group.group_id,
        state=group.state.value,
        generation=group.generation,
        protocol_type=group.protocol_type,
        protocol=group.protocol,
        leader=group.leader,
        members=members,
        pending_members=tuple(group.pending),
    )
