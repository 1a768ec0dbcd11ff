"""The consumer-group APIs: FindCoordinator, the membership calls, offsets, and listing.

Each handler turns the kio request of its version into a call on the group driver
(``ctx.groups``, :mod:`rift_broker.server.groups`) and the driver's reply into the
kio response of that version; the coordinator decides everything. A broker without
a group driver answers COORDINATOR_NOT_AVAILABLE.

Version notes: JoinGroup v0 has no rebalance timeout (the session timeout stands in)
and v4+ asks for MEMBER_ID_REQUIRED; LeaveGroup v0-2 name one member at the top
level, v3 a list; OffsetFetch v1 has no top-level error (the partitions carry it)
and v2+ may ask for every partition (``topics`` null); OffsetCommit's retention time
(v2-4) is ignored, since committed offsets do not expire. Static membership
(``group_instance_id``, v5 of JoinGroup) is not implemented: such members are
treated as dynamic ones.

FindCoordinator depends on where partitions lead, so :func:`find_coordinator_response`
takes the answer as a function; the single-node handler answers this node for every
group whose ``__consumer_offsets`` partition is loaded.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from rift_broker.group import GroupErrorCode, JoinProtocol, OffsetCommitEntry
from rift_broker.protocol import ApiKey, Request
from rift_broker.server._build import NO_THROTTLE, error_code, make, nested, response_class
from rift_broker.server.context import BrokerContext

__all__ = [
    "handle_find_coordinator",
    "handle_join_group",
    "handle_sync_group",
    "handle_heartbeat",
    "handle_leave_group",
    "handle_offset_commit",
    "handle_offset_fetch",
    "handle_describe_groups",
    "handle_list_groups",
    "find_coordinator_response",
    "Located",
]

E = GroupErrorCode
_INVALID_REQUEST = 42
_NO_AUTHORIZED_OPERATIONS = -(2**31)  # "not requested" in DescribeGroups v3+

# (error, node id, host, port) of the coordinator of a group.
Located = tuple[int, int, str, int]


def _ms(value: datetime.timedelta) -> int:
    return int(value / datetime.timedelta(milliseconds=1))


# -- FindCoordinator ----------------------------------------------------------------


def find_coordinator_response(request: Request, locate: Callable[[str], Located]) -> Any:
    """A FindCoordinator response from ``locate(group_id)``; only group keys are served
    (transactions are not), and other key types get INVALID_REQUEST."""
    body = request.body
    cls = response_class(ApiKey.FIND_COORDINATOR, request.response_version)
    key_type = int(getattr(body, "key_type", 0))
    if key_type != 0:
        code, node, host, port = _INVALID_REQUEST, -1, "", -1
        message: str | None = f"key type {key_type} is not supported (only groups)"
    else:
        code, node, host, port = locate(body.key)
        message = None
    return make(
        cls,
        throttle_time=NO_THROTTLE,
        error_code=error_code(code),
        error_message=message,
        node_id=node,
        host=host,
        port=port,
    )


async def handle_find_coordinator(ctx: BrokerContext, request: Request) -> Any:
    def locate(group_id: str) -> Located:
        groups = ctx.groups
        if groups is None or not groups.is_coordinator(group_id):
            return E.COORDINATOR_NOT_AVAILABLE, -1, "", -1
        host, port = ctx.config.advertised
        return E.NONE, ctx.config.node_id, host, port

    return find_coordinator_response(request, locate)


# -- membership ---------------------------------------------------------------------


async def handle_join_group(ctx: BrokerContext, request: Request) -> Any:
    body = request.body
    version = request.response_version
    cls = response_class(ApiKey.JOIN_GROUP, version)
    groups = ctx.groups
    if groups is None:
        return make(
            cls,
            throttle_time=NO_THROTTLE,
            error_code=error_code(E.COORDINATOR_NOT_AVAILABLE),
            generation_id=-1,
            protocol_name="",
            leader="",
            member_id=body.member_id,
            members=(),
        )
    session_timeout_ms = _ms(body.session_timeout)
    reply = await groups.join(
        group_id=body.group_id,
        member_id=body.member_id,
        client_id=request.header.client_id or "",
        session_timeout_ms=session_timeout_ms,
        rebalance_timeout_ms=_ms(body.rebalance_timeout) if version >= 1 else session_timeout_ms,
        protocol_type=body.protocol_type,
        protocols=[JoinProtocol(name=p.name, metadata=p.metadata) for p in body.protocols],
        require_known_member_id=version >= 4,
    )
    members = tuple(
        nested(
            cls,
            "JoinGroupResponseMember",
            member_id=m.member_id,
            group_instance_id=m.group_instance_id,
            metadata=m.metadata,
        )
        for m in reply.members
    )
    return make(
        cls,
        throttle_time=NO_THROTTLE,
        error_code=error_code(reply.error),
        generation_id=reply.generation_id,
        protocol_name=reply.protocol_name,
        leader=reply.leader,
        member_id=reply.member_id,
        members=members,
    )


async def handle_sync_group(ctx: BrokerContext, request: Request) -> Any:
    body = request.body
    cls = response_class(ApiKey.SYNC_GROUP, request.response_version)
    code, assignment = int(E.COORDINATOR_NOT_AVAILABLE), b""
    if ctx.groups is not None:
        reply = await ctx.groups.sync(
            group_id=body.group_id,
            member_id=body.member_id,
            generation_id=body.generation_id,
            assignments={a.member_id: a.assignment for a in body.assignments},
        )
        code, assignment = reply.error, reply.assignment
    return make(cls, throttle_time=NO_THROTTLE, error_code=error_code(code), assignment=assignment)


async def handle_heartbeat(ctx: BrokerContext, request: Request) -> Any:
    body = request.body
    cls = response_class(ApiKey.HEARTBEAT, request.response_version)
    code = int(E.COORDINATOR_NOT_AVAILABLE)
    if ctx.groups is not None:
        reply = await ctx.groups.heartbeat(
            group_id=body.group_id, member_id=body.member_id, generation_id=body.generation_id
        )
        code = reply.error
    return make(cls, throttle_time=NO_THROTTLE, error_code=error_code(code))


async def handle_leave_group(ctx: BrokerContext, request: Request) -> Any:
    body = request.body
    version = request.response_version
    cls = response_class(ApiKey.LEAVE_GROUP, version)
    member_ids = [body.member_id] if version < 3 else [m.member_id for m in body.members]
    if ctx.groups is None:
        code = int(E.COORDINATOR_NOT_AVAILABLE)
        results = [(member_id, code) for member_id in member_ids]
    else:
        reply = await ctx.groups.leave(group_id=body.group_id, member_ids=member_ids)
        code = reply.error
        results = [(m.member_id, m.error) for m in reply.members]
    if version < 3:
        # One member: its own error is the answer unless the whole request failed.
        if code == E.NONE and results:
            code = results[0][1]
        return make(cls, throttle_time=NO_THROTTLE, error_code=error_code(code))
    members = tuple(
        nested(
            cls,
            "MemberResponse",
            member_id=member_id,
            group_instance_id=None,
            error_code=error_code(member_code if code == E.NONE else code),
        )
        for member_id, member_code in results
    )
    return make(cls, throttle_time=NO_THROTTLE, error_code=error_code(code), members=members)


# -- offsets --------------------------------------------------------------------------


async def handle_offset_commit(ctx: BrokerContext, request: Request) -> Any:
    body = request.body
    cls = response_class(ApiKey.OFFSET_COMMIT, request.response_version)
    entries = [
        OffsetCommitEntry(
            topic=topic.name,
            partition=part.partition_index,
            offset=part.committed_offset,
            leader_epoch=int(getattr(part, "committed_leader_epoch", -1)),
            metadata=part.committed_metadata,
        )
        for topic in body.topics
        for part in topic.partitions
    ]
    if ctx.groups is None:
        codes = [int(E.COORDINATOR_NOT_AVAILABLE)] * len(entries)
    else:
        results = await ctx.groups.commit_offsets(
            group_id=body.group_id,
            member_id=body.member_id,
            generation_id=body.generation_id_or_member_epoch,
            offsets=entries,
        )
        codes = [r.error for r in results]
    answers = iter(codes)  # one per partition, in request order
    topics = tuple(
        nested(
            cls,
            "OffsetCommitResponseTopic",
            name=topic.name,
            partitions=tuple(
                nested(
                    cls,
                    "OffsetCommitResponsePartition",
                    partition_index=part.partition_index,
                    error_code=error_code(next(answers)),
                )
                for part in topic.partitions
            ),
        )
        for topic in body.topics
    )
    return make(cls, throttle_time=NO_THROTTLE, topics=topics)


async def handle_offset_fetch(ctx: BrokerContext, request: Request) -> Any:
    body = request.body
    version = request.response_version
    cls = response_class(ApiKey.OFFSET_FETCH, version)
    wanted = (
        None
        if body.topics is None
        else [(t.name, int(p)) for t in body.topics for p in t.partition_indexes]
    )
    if ctx.groups is None:
        code = int(E.COORDINATOR_NOT_AVAILABLE)
        found = [(t, p, -1, -1, "", code) for t, p in wanted or ()]
    else:
        reply = await ctx.groups.fetch_offsets(group_id=body.group_id, partitions=wanted)
        code = reply.error
        found = [
            (f.topic, f.partition, f.offset, f.leader_epoch, f.metadata, f.error)
            for f in reply.partitions
        ]
    by_topic: dict[str, list[Any]] = {}
    for topic, partition, offset, epoch, metadata, part_code in found:
        by_topic.setdefault(topic, []).append(
            nested(
                cls,
                "OffsetFetchResponsePartition",
                partition_index=partition,
                committed_offset=offset,
                committed_leader_epoch=epoch,
                metadata=metadata,
                error_code=error_code(part_code),
            )
        )
    topics = tuple(
        nested(cls, "OffsetFetchResponseTopic", name=name, partitions=tuple(parts))
        for name, parts in by_topic.items()
    )
    return make(cls, throttle_time=NO_THROTTLE, topics=topics, error_code=error_code(code))


# -- listing ------------------------------------------------------------------------


async def handle_describe_groups(ctx: BrokerContext, request: Request) -> Any:
    cls = response_class(ApiKey.DESCRIBE_GROUPS, request.response_version)
    described = []
    for group_id in request.body.groups:
        if ctx.groups is None:
            code, view = int(E.COORDINATOR_NOT_AVAILABLE), None
        else:
            code, view = ctx.groups.describe(group_id)
        members: tuple[Any, ...] = ()
        state, protocol_type, protocol = "Dead", "", ""
        if view is not None:
            state, protocol_type = view.state, view.protocol_type or ""
            stable = view.state == "Stable"
            protocol = (view.protocol or "") if stable else ""
            members = tuple(
                nested(
                    cls,
                    "DescribedGroupMember",
                    member_id=m.member_id,
                    group_instance_id=None,
                    client_id=m.client_id,
                    client_host=m.client_host,
                    # Kafka shows subscriptions and assignments of a Stable group only.
                    member_metadata=m.metadata if stable else b"",
                    member_assignment=(m.assignment or b"") if stable else b"",
                )
                for m in view.members
            )
        described.append(
            nested(
                cls,
                "DescribedGroup",
                error_code=error_code(code),
                group_id=group_id,
                group_state=state,
                protocol_type=protocol_type,
                protocol_data=protocol,
                members=members,
                authorized_operations=_NO_AUTHORIZED_OPERATIONS,
            )
        )
    return make(cls, throttle_time=NO_THROTTLE, groups=tuple(described))


async def handle_list_groups(ctx: BrokerContext, request: Request) -> Any:
    cls = response_class(ApiKey.LIST_GROUPS, request.response_version)
    if ctx.groups is None:
        return make(
            cls,
            throttle_time=NO_THROTTLE,
            error_code=error_code(E.COORDINATOR_NOT_AVAILABLE),
            groups=(),
        )
    listed = tuple(
        nested(cls, "ListedGroup", group_id=view.group_id, protocol_type=view.protocol_type or "")
        for view in ctx.groups.list_groups()
    )
    return make(cls, throttle_time=NO_THROTTLE, error_code=error_code(0), groups=listed)
