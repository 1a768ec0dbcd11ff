"""OffsetCommit and OffsetFetch: member checks, durability, and failover through the log."""

from __future__ import annotations

from rift_broker.group import (
    CommitReply,
    FetchedOffset,
    FetchReply,
    GroupConfig,
    GroupKey,
    JoinReply,
    MemoryDriver,
    OffsetKey,
    OffsetValue,
    encode_group,
    encode_offset,
)
from rift_broker.group import GroupErrorCode as E

NO_DELAY = GroupConfig(initial_rebalance_delay_ms=0)


def join_reply(d: MemoryDriver, rid: int) -> JoinReply:
    reply = d.reply(rid)
    assert isinstance(reply, JoinReply)
    return reply


def form(d: MemoryDriver, n: int) -> tuple[list[str], int]:
    ids = [join_reply(d, d.join("g", client_id=f"c{i}")).member_id for i in range(n)]
    joins = [d.join("g", m) for m in ids]
    generation = join_reply(d, joins[0]).generation_id
    d.sync("g", ids[0], generation, {m: m.encode() for m in ids})
    for m in ids[1:]:
        d.sync("g", m, generation)
    return ids, generation


def errors(d: MemoryDriver, rid: int) -> list[int]:
    reply = d.reply(rid)
    assert isinstance(reply, CommitReply)
    return [p.error for p in reply.partitions]


def fetched(d: MemoryDriver, group: str = "g", partitions=None) -> FetchReply:  # type: ignore[no-untyped-def]
    reply = d.reply(d.fetch(group, partitions))
    assert isinstance(reply, FetchReply)
    return reply


def offsets(d: MemoryDriver, group: str = "g") -> dict[tuple[str, int], int]:
    return {(p.topic, p.partition): p.offset for p in fetched(d, group).partitions}


def test_standalone_commit_with_generation_minus_one() -> None:
    d = MemoryDriver(config=NO_DELAY)
    rid = d.commit("solo", {("t", 0): 10, ("t", 1): 20})
    assert errors(d, rid) == [E.NONE, E.NONE]
    assert offsets(d, "solo") == {("t", 0): 10, ("t", 1): 20}
    assert d.coordinator.describe("solo").state == "Empty"  # type: ignore[union-attr]
    # A group that does not exist rejects a commit that claims a generation.
    assert errors(d, d.commit("nosuch", {("t", 0): 1}, member_id="m", generation_id=3)) == [
        E.ILLEGAL_GENERATION
    ]


def test_member_commits_are_checked_against_membership_and_generation() -> None:
    d = MemoryDriver(config=NO_DELAY)
    ids, generation = form(d, 2)
    ok = d.commit("g", {("t", 0): 5}, member_id=ids[1], generation_id=generation)
    assert errors(d, ok) == [E.NONE]
    stale = d.commit("g", {("t", 0): 3}, member_id=ids[1], generation_id=generation - 1)
    assert errors(d, stale) == [E.ILLEGAL_GENERATION]
    ghost = d.commit("g", {("t", 0): 3}, member_id="ghost", generation_id=generation)
    assert errors(d, ghost) == [E.UNKNOWN_MEMBER_ID]
    standalone = d.commit("g", {("t", 0): 3})  # generation -1 on a non-empty group
    assert errors(d, standalone) == [E.UNKNOWN_MEMBER_ID]
    assert offsets(d) == {("t", 0): 5}


def test_stale_generation_commit_after_a_rebalance_is_rejected() -> None:
    d = MemoryDriver(config=NO_DELAY)
    ids, generation = form(d, 2)
    d.leave("g", ids[1])
    # PreparingRebalance still accepts the current generation (the heartbeat tells it).
    during = d.commit("g", {("t", 0): 7}, member_id=ids[0], generation_id=generation)
    assert errors(d, during) == [E.NONE]
    rejoin = join_reply(d, d.join("g", ids[0]))
    assert rejoin.generation_id == generation + 1
    # CompletingRebalance: the member knows the new generation but has no assignment.
    early = d.commit("g", {("t", 0): 8}, member_id=ids[0], generation_id=generation + 1)
    assert errors(d, early) == [E.REBALANCE_IN_PROGRESS]
    d.sync("g", ids[0], generation + 1, {ids[0]: b"all"})
    old = d.commit("g", {("t", 0): 9}, member_id=ids[0], generation_id=generation)
    assert errors(d, old) == [E.ILLEGAL_GENERATION]
    new = d.commit("g", {("t", 0): 10}, member_id=ids[0], generation_id=generation + 1)
    assert errors(d, new) == [E.NONE]
    assert offsets(d) == {("t", 0): 10}


def test_commit_is_answered_and_visible_only_once_durable() -> None:
    d = MemoryDriver(config=NO_DELAY, auto_durable=False)
    rid = d.commit("solo", {("t", 0): 10})
    assert rid not in d.replies
    assert offsets(d, "solo") == {}
    (append_id,) = d.in_flight
    append = d.in_flight[append_id]
    assert append.partition == 0
    assert len(append.records) == 1
    d.complete(append_id)
    assert errors(d, rid) == [E.NONE]
    assert offsets(d, "solo") == {("t", 0): 10}


def test_failed_commit_append_is_translated_and_not_applied() -> None:
    d = MemoryDriver(config=NO_DELAY, auto_durable=False)
    cases = {
        19: E.COORDINATOR_NOT_AVAILABLE,
        6: E.NOT_COORDINATOR,
        10: E.INVALID_COMMIT_OFFSET_SIZE,
    }
    for append_error, expected in cases.items():
        rid = d.commit("solo", {("t", 0): append_error})
        (append_id,) = d.in_flight
        d.complete(append_id, error=append_error)
        assert errors(d, rid) == [expected]
    assert offsets(d, "solo") == {}


def test_durability_reported_out_of_order_keeps_the_later_commit() -> None:
    d = MemoryDriver(config=NO_DELAY, auto_durable=False)
    first = d.commit("solo", {("t", 0): 1})
    second = d.commit("solo", {("t", 0): 2})
    a, b = sorted(d.in_flight)
    d.complete(b)
    d.complete(a)
    assert errors(d, first) == errors(d, second) == [E.NONE]
    assert offsets(d, "solo") == {("t", 0): 2}


def test_metadata_too_large_fails_only_that_partition() -> None:
    d = MemoryDriver(config=GroupConfig(initial_rebalance_delay_ms=0, max_metadata_size=4))
    rid = d.commit("solo", {("t", 0): 1, ("t", 1): 2}, metadata="12345")
    assert errors(d, rid) == [E.OFFSET_METADATA_TOO_LARGE, E.OFFSET_METADATA_TOO_LARGE]
    rid = d.commit("solo", {("t", 0): 1}, metadata="1234")
    assert errors(d, rid) == [E.NONE]
    rid = d.commit("solo", {("t", 1): 1}, metadata=None)
    assert errors(d, rid) == [E.NONE]
    assert [p.metadata for p in fetched(d, "solo").partitions] == ["1234", ""]


def test_fetch_lists_requested_partitions_with_minus_one_where_none() -> None:
    d = MemoryDriver(config=NO_DELAY)
    d.commit("solo", {("b", 1): 11, ("a", 0): 5}, metadata="m")
    reply = fetched(d, "solo", [("a", 0), ("zzz", 3)])
    assert reply.error == E.NONE
    assert reply.partitions == (
        FetchedOffset(topic="a", partition=0, offset=5, metadata="m"),
        FetchedOffset(topic="zzz", partition=3, offset=-1),
    )
    # No partitions listed (v2+): every committed one, sorted.
    assert [(p.topic, p.partition, p.offset) for p in fetched(d, "solo").partitions] == [
        ("a", 0, 5),
        ("b", 1, 11),
    ]
    assert fetched(d, "nobody", [("a", 0)]).partitions[0].offset == -1
    assert fetched(d, "").error == E.INVALID_GROUP_ID


def test_offsets_survive_failover() -> None:
    d = MemoryDriver(config=NO_DELAY)
    ids, generation = form(d, 2)
    d.commit("g", {("t", 0): 100, ("t", 1): 200}, member_id=ids[0], generation_id=generation)
    d.commit("g", {("t", 1): 250}, member_id=ids[1], generation_id=generation)
    d.commit("solo", {("u", 0): 7})
    before = {g: offsets(d, g) for g in ("g", "solo")}
    assert before["g"] == {("t", 0): 100, ("t", 1): 250}

    d2 = d.failover()  # a new coordinator loads the durable log
    assert {g: offsets(d2, g) for g in ("g", "solo")} == before
    # The group resumes Stable in its generation: members that keep heartbeating stay.
    view = d2.coordinator.describe("g")
    assert view is not None
    assert (view.state, view.generation, view.leader) == ("Stable", generation, ids[0])
    assert [m.assignment for m in view.members] == [ids[0].encode(), ids[1].encode()]
    assert d2.reply(d2.heartbeat("g", ids[0], generation)).error == E.NONE  # type: ignore[union-attr]
    rid = d2.commit("g", {("t", 0): 101}, member_id=ids[0], generation_id=generation)
    assert errors(d2, rid) == [E.NONE]
    stale = d2.commit("g", {("t", 0): 1}, member_id=ids[0], generation_id=generation - 1)
    assert errors(d2, stale) == [E.ILLEGAL_GENERATION]


def test_failover_loses_commits_that_were_never_durable() -> None:
    d = MemoryDriver(config=NO_DELAY, auto_durable=False)
    d.commit("solo", {("t", 0): 1})
    d.complete(next(iter(d.in_flight)))
    d.commit("solo", {("t", 0): 2})  # in flight when the leader dies
    d2 = d.failover()
    assert offsets(d2, "solo") == {("t", 0): 1}


def test_loaded_silent_members_expire_and_the_group_empties() -> None:
    d = MemoryDriver(config=NO_DELAY)
    _, generation = form(d, 2)
    d2 = d.failover()
    d2.advance(10_000)  # nobody heartbeats to the new coordinator
    view = d2.coordinator.describe("g")
    assert view is not None
    assert (view.state, view.generation) == ("Empty", generation + 1)


def test_load_last_value_wins_and_tombstones_delete() -> None:
    def off(topic: str, partition: int, offset: int | None):  # type: ignore[no-untyped-def]
        key = OffsetKey(group_id="g", topic=topic, partition=partition)
        return encode_offset(key, None if offset is None else OffsetValue(offset=offset))

    group = GroupKey(group_id="gone")
    from rift_broker.group import GroupValue

    log = [
        off("t", 0, 1),
        off("t", 1, 1),
        off("t", 0, 2),
        off("t", 1, None),
        encode_group(
            group, GroupValue(protocol_type="consumer", generation=4, protocol=None, leader=None)
        ),
        encode_group(group, None),
    ]
    d = MemoryDriver(config=NO_DELAY, log={0: log})
    assert offsets(d) == {("t", 0): 2}
    assert d.coordinator.describe("g").state == "Empty"  # type: ignore[union-attr]
    assert d.coordinator.describe("gone") is None


def test_loaded_empty_group_keeps_its_generation() -> None:
    d = MemoryDriver(config=NO_DELAY)
    ids, generation = form(d, 1)
    d.leave("g", ids[0])
    d2 = d.failover()
    view = d2.coordinator.describe("g")
    assert view is not None
    assert (view.state, view.generation) == ("Empty", generation + 1)
    (m,) = [join_reply(d2, d2.join("g")).member_id]
    assert join_reply(d2, d2.join("g", m)).generation_id == generation + 2


def test_unload_fails_waiting_commits_with_not_coordinator() -> None:
    d = MemoryDriver(config=NO_DELAY, auto_durable=False)
    rid = d.commit("solo", {("t", 0): 1})
    (append_id,) = d.in_flight
    d.unload()
    assert errors(d, rid) == [E.NOT_COORDINATOR]
    d.complete(append_id)  # a late report for an unloaded partition is ignored
    assert fetched(d, "solo").error == E.NOT_COORDINATOR
    assert errors(d, d.commit("solo", {("t", 0): 1})) == [E.NOT_COORDINATOR]
