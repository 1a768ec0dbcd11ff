"""JoinGroup, SyncGroup, Heartbeat and LeaveGroup scenarios against the coordinator core."""

from __future__ import annotations

import pytest

from rift_broker.group import (
    Append,
    GroupConfig,
    GroupCoordinator,
    JoinProtocol,
    JoinReply,
    LeaveReply,
    MemoryDriver,
    SyncReply,
    decode_group_value,
    decode_key,
)
from rift_broker.group import GroupErrorCode as E

NO_DELAY = GroupConfig(initial_rebalance_delay_ms=0)


def driver(**kwargs: object) -> MemoryDriver:
    kwargs.setdefault("config", NO_DELAY)
    return MemoryDriver(**kwargs)  # type: ignore[arg-type]


def join_reply(d: MemoryDriver, rid: int) -> JoinReply:
    reply = d.reply(rid)
    assert isinstance(reply, JoinReply)
    return reply


def sync_reply(d: MemoryDriver, rid: int) -> SyncReply:
    reply = d.reply(rid)
    assert isinstance(reply, SyncReply)
    return reply


def new_ids(d: MemoryDriver, n: int, group: str = "g") -> list[str]:
    """``n`` clients get member ids with MEMBER_ID_REQUIRED."""
    ids = []
    for i in range(n):
        reply = join_reply(d, d.join(group, client_id=f"c{i}"))
        assert reply.error == E.MEMBER_ID_REQUIRED
        ids.append(reply.member_id)
    return ids


def form(d: MemoryDriver, n: int, group: str = "g") -> tuple[list[str], int]:
    """A Stable group of ``n`` members; each is assigned its own id as bytes."""
    ids = new_ids(d, n, group)
    joins = [d.join(group, m) for m in ids]
    generation = join_reply(d, joins[0]).generation_id
    return ids, sync_all(d, ids, generation, group)


def sync_all(d: MemoryDriver, ids: list[str], generation: int, group: str = "g") -> int:
    view = d.coordinator.describe(group)
    assert view is not None
    assert view.leader is not None
    leader = view.leader
    order = [m for m in ids if m != leader] + [leader]  # followers first: they wait
    rids = {
        m: d.sync(group, m, generation, {x: x.encode() for x in ids} if m == leader else None)
        for m in order
    }
    for m, rid in rids.items():
        assert sync_reply(d, rid) == SyncReply(request_id=rid, error=E.NONE, assignment=m.encode())
    return generation


def state(d: MemoryDriver, group: str = "g") -> str:
    view = d.coordinator.describe(group)
    assert view is not None
    return view.state


# -- forming a group --------------------------------------------------------------


def test_three_members_form_a_group_with_member_id_required() -> None:
    d = driver()
    ids = new_ids(d, 3)
    assert len(set(ids)) == 3
    assert [i.split("-")[0] for i in ids] == ["c0", "c1", "c2"]  # client id prefix
    assert state(d) == "Empty"
    assert d.coordinator.describe("g").pending_members == tuple(ids)  # type: ignore[union-attr]

    first = d.join("g", ids[0], protocols=[("range", b"m0")])
    assert first not in d.replies  # waits for the pending members
    assert state(d) == "PreparingRebalance"
    second = d.join("g", ids[1], protocols=[("range", b"m1")])
    third = d.join("g", ids[2], protocols=[("range", b"m2")])

    leader = join_reply(d, first)
    assert leader.error == E.NONE
    assert leader.generation_id == 1
    assert leader.protocol_name == "range"
    assert leader.leader == ids[0] == leader.member_id
    assert [(m.member_id, m.metadata) for m in leader.members] == [
        (ids[0], b"m0"),
        (ids[1], b"m1"),
        (ids[2], b"m2"),
    ]
    for rid, mid in ((second, ids[1]), (third, ids[2])):
        follower = join_reply(d, rid)
        assert (follower.error, follower.generation_id, follower.leader) == (E.NONE, 1, ids[0])
        assert follower.member_id == mid
        assert follower.members == ()  # only the leader sees the members
    assert state(d) == "CompletingRebalance"

    sync_all(d, ids, 1)
    assert state(d) == "Stable"


def test_join_without_member_id_required_assigns_an_id_in_the_answer() -> None:
    d = driver()
    reply = join_reply(d, d.join("g", client_id="old", require_known_member_id=False))
    assert reply.error == E.NONE
    assert reply.member_id.startswith("old-")
    assert reply.leader == reply.member_id
    assert reply.generation_id == 1


def test_follower_sync_waits_for_the_leader_and_missing_members_get_empty() -> None:
    d = driver()
    ids = new_ids(d, 2)
    joins = [d.join("g", m) for m in ids]
    generation = join_reply(d, joins[0]).generation_id
    follower = d.sync("g", ids[1], generation)
    assert follower not in d.replies
    lead = d.sync("g", ids[0], generation, {ids[0]: b"a", "stranger": b"x"})
    assert sync_reply(d, lead).assignment == b"a"
    assert sync_reply(d, follower) == SyncReply(request_id=follower, error=E.NONE, assignment=b"")
    # After Stable a sync is answered at once with the member's assignment.
    again = d.sync("g", ids[0], generation)
    assert sync_reply(d, again).assignment == b"a"


def test_sync_waits_until_the_assignment_is_durable() -> None:
    d = driver(auto_durable=False)
    ids = new_ids(d, 2)
    joins = [d.join("g", m) for m in ids]
    generation = join_reply(d, joins[0]).generation_id
    rids = [d.sync("g", ids[0], generation, {ids[0]: b"a", ids[1]: b"b"})]
    rids.append(d.sync("g", ids[1], generation))
    assert not set(rids) & set(d.replies)
    (append_id,) = d.in_flight
    record = d.in_flight[append_id].records[0]
    assert decode_key(record.key).group_id == "g"
    assert record.value is not None
    stored = decode_group_value(record.value)
    assert (stored.generation, stored.leader, stored.protocol) == (generation, ids[0], "range")
    assert [m.assignment for m in stored.members] == [b"a", b"b"]
    assert state(d) == "CompletingRebalance"
    d.complete(append_id)
    assert [sync_reply(d, r).assignment for r in rids] == [b"a", b"b"]
    assert state(d) == "Stable"


def test_failed_assignment_append_fails_the_syncs_and_rebalances() -> None:
    d = driver(auto_durable=False)
    ids = new_ids(d, 2)
    joins = [d.join("g", m) for m in ids]
    generation = join_reply(d, joins[0]).generation_id
    rids = [d.sync("g", ids[0], generation, {}), d.sync("g", ids[1], generation)]
    (append_id,) = d.in_flight
    d.complete(append_id, error=6)  # NOT_LEADER_OR_FOLLOWER -> NOT_COORDINATOR
    assert [sync_reply(d, r).error for r in rids] == [E.NOT_COORDINATOR, E.NOT_COORDINATOR]
    assert state(d) == "PreparingRebalance"


def test_protocol_is_chosen_by_vote_among_common_protocols() -> None:
    d = driver()
    ids = new_ids(d, 3)
    prefs = [
        [("range", b"r0"), ("roundrobin", b"o0"), ("sticky", b"s0")],
        [("roundrobin", b"o1"), ("range", b"r1")],
        [("sticky", b"s2"), ("roundrobin", b"o2"), ("range", b"r2")],
    ]
    joins = [d.join("g", m, protocols=p) for m, p in zip(ids, prefs, strict=True)]
    leader = join_reply(d, joins[0])
    # sticky is not common; votes: range (c0), roundrobin (c1, c2).
    assert leader.protocol_name == "roundrobin"
    assert [m.metadata for m in leader.members] == [b"o0", b"o1", b"o2"]


def test_inconsistent_group_protocol() -> None:
    d = driver()
    form(d, 1)
    wrong_type = join_reply(d, d.join("g", protocol_type="connect"))
    assert wrong_type.error == E.INCONSISTENT_GROUP_PROTOCOL
    no_common = join_reply(d, d.join("g", protocols=[("roundrobin", b"")]))
    assert no_common.error == E.INCONSISTENT_GROUP_PROTOCOL
    nothing = join_reply(d, d.join("h", protocols=[]))
    assert nothing.error == E.INCONSISTENT_GROUP_PROTOCOL
    assert d.coordinator.describe("h") is None  # a failed join leaves no group behind
    assert state(d) == "Stable"


@pytest.mark.parametrize("timeout", [5_999, 1_800_001])
def test_invalid_session_timeout(timeout: int) -> None:
    d = driver()
    reply = join_reply(d, d.join("g", session_timeout_ms=timeout))
    assert reply.error == E.INVALID_SESSION_TIMEOUT


def test_invalid_group_id_everywhere() -> None:
    d = driver()
    assert join_reply(d, d.join("")).error == E.INVALID_GROUP_ID
    assert d.reply(d.heartbeat("", "m", 1)).error == E.INVALID_GROUP_ID  # type: ignore[union-attr]
    assert sync_reply(d, d.sync("", "m", 1)).error == E.INVALID_GROUP_ID


def test_unknown_member_id_on_join() -> None:
    d = driver()
    assert join_reply(d, d.join("nosuch", "ghost")).error == E.UNKNOWN_MEMBER_ID
    form(d, 1)
    assert join_reply(d, d.join("g", "ghost")).error == E.UNKNOWN_MEMBER_ID


# -- sync and heartbeat errors -----------------------------------------------------


def test_sync_errors() -> None:
    d = driver()
    ids, generation = form(d, 2)
    assert sync_reply(d, d.sync("g", ids[0], generation - 1)).error == E.ILLEGAL_GENERATION
    assert sync_reply(d, d.sync("g", "ghost", generation)).error == E.UNKNOWN_MEMBER_ID
    assert sync_reply(d, d.sync("nosuch", "ghost", 1)).error == E.UNKNOWN_MEMBER_ID
    d.join("g", ids[0])  # the leader rejoins: PreparingRebalance
    assert sync_reply(d, d.sync("g", ids[1], generation)).error == E.REBALANCE_IN_PROGRESS


def test_heartbeat_answers_by_state() -> None:
    d = driver()
    ids, generation = form(d, 2)

    def beat(member: str, gen: int, group: str = "g") -> int:
        return d.reply(d.heartbeat(group, member, gen)).error  # type: ignore[union-attr]

    assert beat(ids[1], generation) == E.NONE
    assert beat(ids[1], generation + 1) == E.ILLEGAL_GENERATION
    assert beat("ghost", generation) == E.UNKNOWN_MEMBER_ID
    assert beat("ghost", generation, "nosuch") == E.UNKNOWN_MEMBER_ID
    d.join("g", ids[0])  # the leader rejoins: PreparingRebalance
    assert beat(ids[1], generation) == E.REBALANCE_IN_PROGRESS
    d.join("g", ids[1])
    assert state(d) == "CompletingRebalance"
    assert beat(ids[1], generation + 1) == E.NONE  # between join and sync answers


# -- rejoins -----------------------------------------------------------------------


def test_follower_rejoin_with_same_metadata_gets_the_current_generation() -> None:
    d = driver()
    ids, generation = form(d, 2)
    reply = join_reply(d, d.join("g", ids[1]))
    assert (reply.error, reply.generation_id, reply.leader) == (E.NONE, generation, ids[0])
    assert state(d) == "Stable"


def test_follower_rejoin_with_new_metadata_rebalances() -> None:
    d = driver()
    ids, generation = form(d, 2)
    rid = d.join("g", ids[1], protocols=[("range", b"new topics")])
    assert rid not in d.replies
    assert state(d) == "PreparingRebalance"
    lead = join_reply(d, d.join("g", ids[0]))
    assert lead.generation_id == generation + 1
    assert [m.metadata for m in lead.members] == [b"", b"new topics"]


def test_current_leader_is_kept_when_it_rejoins() -> None:
    d = driver()
    ids, generation = form(d, 3)
    d.join("g", ids[2])  # a follower's metadata is unchanged: answered at once
    late_leader = d.join("g", ids[0])  # the leader rejoins: rebalance
    d.join("g", ids[2])
    d.join("g", ids[1])
    reply = join_reply(d, late_leader)
    assert reply.leader == ids[0]
    assert reply.generation_id == generation + 1
    assert len(reply.members) == 3


def test_new_member_rebalances_a_stable_group_and_resets_waiting_syncs() -> None:
    d = driver(auto_durable=False)
    ids = new_ids(d, 2)
    joins = [d.join("g", m) for m in ids]
    generation = join_reply(d, joins[0]).generation_id
    waiting = d.sync("g", ids[1], generation)
    (newcomer,) = new_ids(d, 1)
    d.join("g", newcomer)
    assert sync_reply(d, waiting).error == E.REBALANCE_IN_PROGRESS
    assert state(d) == "PreparingRebalance"


def test_a_join_retry_supersedes_the_waiting_one() -> None:
    d = driver()
    ids, _ = form(d, 2)
    first = d.join("g", ids[0])
    second = d.join("g", ids[0])
    assert join_reply(d, first).error == E.REBALANCE_IN_PROGRESS
    assert second not in d.replies
    d.join("g", ids[1])
    assert join_reply(d, second).error == E.NONE


# -- leaving -----------------------------------------------------------------------


def test_member_leaving_triggers_rebalance_and_generation_bump() -> None:
    d = driver()
    ids, generation = form(d, 3)
    rid = d.leave("g", ids[1])
    reply = d.reply(rid)
    assert isinstance(reply, LeaveReply)
    assert reply.error == E.NONE
    assert [(m.member_id, m.error) for m in reply.members] == [(ids[1], E.NONE)]
    assert state(d) == "PreparingRebalance"
    assert d.reply(d.heartbeat("g", ids[0], generation)).error == E.REBALANCE_IN_PROGRESS  # type: ignore[union-attr]
    joins = [d.join("g", ids[0]), d.join("g", ids[2])]
    lead = join_reply(d, joins[0])
    assert lead.generation_id == generation + 1
    assert [m.member_id for m in lead.members] == [ids[0], ids[2]]
    sync_all(d, [ids[0], ids[2]], generation + 1)


def test_leader_leaving_hands_leadership_to_a_remaining_member() -> None:
    d = driver()
    ids, generation = form(d, 2)
    d.leave("g", ids[0])
    reply = join_reply(d, d.join("g", ids[1]))
    assert reply.leader == ids[1]
    assert reply.generation_id == generation + 1


def test_last_member_leaving_empties_the_group_and_stores_it() -> None:
    d = driver()
    ids, generation = form(d, 1)
    d.leave("g", ids[0])
    view = d.coordinator.describe("g")
    assert view is not None
    assert (view.state, view.generation, view.members) == ("Empty", generation + 1, ())
    last = d.log[0][-1]
    assert last.value is not None
    stored = decode_group_value(last.value)
    assert (stored.generation, stored.members, stored.protocol) == (generation + 1, (), None)


def test_leave_errors_and_batch_leave() -> None:
    d = driver()
    ids, _ = form(d, 3)
    reply = d.reply(d.leave("g", ids[0], "ghost", ids[2]))
    assert isinstance(reply, LeaveReply)
    assert [m.error for m in reply.members] == [E.NONE, E.UNKNOWN_MEMBER_ID, E.NONE]
    unknown_group = d.reply(d.leave("nosuch", "ghost"))
    assert isinstance(unknown_group, LeaveReply)
    assert unknown_group.members[0].error == E.UNKNOWN_MEMBER_ID


def test_leaving_while_waiting_for_a_join_answers_it() -> None:
    d = driver()
    ids, _ = form(d, 2)
    waiting = d.join("g", ids[0])  # leader rejoin: waits for ids[1]
    d.leave("g", ids[0])
    assert join_reply(d, waiting).error == E.UNKNOWN_MEMBER_ID


def test_pending_member_can_leave_and_unblocks_the_join() -> None:
    d = driver()
    ids = new_ids(d, 2)
    rid = d.join("g", ids[0])
    assert rid not in d.replies
    d.leave("g", ids[1])
    assert join_reply(d, rid).generation_id == 1


# -- contract ----------------------------------------------------------------------


def test_request_id_reuse_while_waiting_is_rejected() -> None:
    c = GroupCoordinator(num_partitions=1, config=NO_DELAY)
    c.load(partition=0, records=[], now_ms=0)
    kwargs = {
        "group_id": "g",
        "client_id": "c",
        "session_timeout_ms": 10_000,
        "rebalance_timeout_ms": 10_000,
        "protocol_type": "consumer",
        "protocols": [JoinProtocol(name="range", metadata=b"")],
        "require_known_member_id": True,
        "now_ms": 0,
    }
    (reply,) = c.join(request_id=1, member_id="", **kwargs)  # type: ignore[arg-type]
    c.join(request_id=3, member_id="", **kwargs)  # type: ignore[arg-type]
    assert isinstance(reply, JoinReply)
    c.join(request_id=2, member_id=reply.member_id, **kwargs)  # type: ignore[arg-type]
    assert c.waiting_requests == {2}
    with pytest.raises(ValueError, match="still waiting"):
        c.join(request_id=2, member_id=reply.member_id, **kwargs)  # type: ignore[arg-type]
    # Ids may be reused once answered.
    outputs = c.join(request_id=1, member_id="", **kwargs)  # type: ignore[arg-type]
    assert [type(o) for o in outputs] == [JoinReply]


def test_groups_of_unloaded_partitions_get_not_coordinator() -> None:
    c = GroupCoordinator(num_partitions=2, config=NO_DELAY)
    group = next(g for g in ("a", "b", "c", "d") if c.partition_for(g) == 1)
    c.load(partition=0, records=[], now_ms=0)
    assert not c.owns(group)
    (reply,) = c.heartbeat(request_id=1, group_id=group, member_id="m", generation_id=1, now_ms=0)
    assert reply.error == E.NOT_COORDINATOR  # type: ignore[union-attr]
    assert c.describe_group(group) == (E.NOT_COORDINATOR, None)


def test_describe_group_is_routed_like_every_group_request() -> None:
    c = GroupCoordinator(num_partitions=1, config=NO_DELAY)
    c.load(partition=0, records=[], now_ms=0)
    assert c.describe_group("") == (E.INVALID_GROUP_ID, None)
    assert c.describe_group("nobody") == (E.NONE, None)


def test_unload_answers_waiting_requests_with_not_coordinator() -> None:
    d = driver(auto_durable=False)
    ids = new_ids(d, 2)
    joins = [d.join("g", m) for m in ids]
    generation = join_reply(d, joins[0]).generation_id
    waiting_sync = d.sync("g", ids[1], generation)
    (newcomer,) = new_ids(d, 1)
    waiting_join = d.join("g", newcomer)
    assert sync_reply(d, waiting_sync).error == E.REBALANCE_IN_PROGRESS
    commit = d.commit("g", {("t", 0): 5}, member_id=ids[0], generation_id=generation + 1)
    assert commit in d.replies  # wrong generation: answered at once
    outputs = d.coordinator.unload(partition=0, now_ms=d.now_ms)
    assert [o.request_id for o in outputs if not isinstance(o, Append)] == [waiting_join]
    d.take(outputs)
    assert join_reply(d, waiting_join).error == E.NOT_COORDINATOR
    assert d.coordinator.waiting_requests == frozenset()
