"""Session expiry, rebalance timeout, initial rebalance delay and pending member ids."""

from __future__ import annotations

from rift_broker.group import GroupConfig, JoinReply, MemoryDriver, SyncReply
from rift_broker.group import GroupErrorCode as E

NO_DELAY = GroupConfig(initial_rebalance_delay_ms=0)


def join_reply(d: MemoryDriver, rid: int) -> JoinReply:
    reply = d.reply(rid)
    assert isinstance(reply, JoinReply)
    return reply


def form(d: MemoryDriver, n: int, *, session_timeout_ms: int = 10_000) -> tuple[list[str], int]:
    ids = [
        join_reply(
            d, d.join("g", client_id=f"c{i}", session_timeout_ms=session_timeout_ms)
        ).member_id
        for i in range(n)
    ]
    joins = [
        d.join("g", m, session_timeout_ms=session_timeout_ms, rebalance_timeout_ms=30_000)
        for m in ids
    ]
    generation = join_reply(d, joins[0]).generation_id
    d.sync("g", ids[0], generation, {m: m.encode() for m in ids})
    for m in ids[1:]:
        d.sync("g", m, generation)
    assert d.coordinator.describe("g").state == "Stable"  # type: ignore[union-attr]
    return ids, generation


def beat(d: MemoryDriver, member: str, generation: int) -> int:
    return d.reply(d.heartbeat("g", member, generation)).error  # type: ignore[union-attr]


def test_crashed_member_expires_after_session_timeout_and_the_rest_rebalance() -> None:
    d = MemoryDriver(config=NO_DELAY)
    ids, generation = form(d, 3)
    # ids[2] crashes: it never speaks again. The others heartbeat every 3 s.
    for _ in range(3):
        d.advance(3_000)
        assert beat(d, ids[0], generation) == E.NONE
        assert beat(d, ids[1], generation) == E.NONE
    assert d.coordinator.next_deadline() == 10_000  # ids[2]'s session deadline
    d.advance(999)
    assert d.coordinator.describe("g").state == "Stable"  # type: ignore[union-attr]
    d.advance(1)
    view = d.coordinator.describe("g")
    assert view is not None
    assert view.state == "PreparingRebalance"
    assert [m.member_id for m in view.members] == ids[:2]
    assert beat(d, ids[0], generation) == E.REBALANCE_IN_PROGRESS
    assert beat(d, ids[2], generation) == E.UNKNOWN_MEMBER_ID
    joins = [d.join("g", ids[0]), d.join("g", ids[1])]
    reply = join_reply(d, joins[0])
    assert reply.generation_id == generation + 1
    assert [m.member_id for m in reply.members] == ids[:2]


def test_laggard_whose_session_lapses_is_dropped_and_the_join_completes() -> None:
    d = MemoryDriver(config=NO_DELAY)
    ids, generation = form(d, 3)
    d.advance(1_000)
    first = d.join("g", ids[0])  # the leader rejoins: rebalance, deadline 1 s + 30 s
    second = d.join("g", ids[1])
    assert d.coordinator.next_deadline() == 10_000  # silent ids[2]'s session deadline
    d.advance(9_000)
    reply = join_reply(d, first)
    assert reply.generation_id == generation + 1
    assert [m.member_id for m in reply.members] == ids[:2]
    assert join_reply(d, second).error == E.NONE


def test_rebalance_timeout_removes_a_member_that_keeps_heartbeating_without_rejoining() -> None:
    d = MemoryDriver(config=NO_DELAY)
    ids, generation = form(d, 2)
    first = d.join("g", ids[0])
    for _ in range(9):
        d.advance(3_000)
        assert beat(d, ids[1], generation) == E.REBALANCE_IN_PROGRESS
    assert first not in d.replies
    d.advance(3_000)  # 30 s: the rebalance timeout
    reply = join_reply(d, first)
    assert [m.member_id for m in reply.members] == [ids[0]]
    assert beat(d, ids[1], generation) == E.UNKNOWN_MEMBER_ID


def test_initial_rebalance_delay_collects_members_of_a_starting_fleet() -> None:
    d = MemoryDriver(config=GroupConfig(initial_rebalance_delay_ms=3_000))
    a = join_reply(d, d.join("g", client_id="a")).member_id
    first = d.join("g", a, rebalance_timeout_ms=10_000)
    assert d.coordinator.next_deadline() == 3_000
    d.advance(2_000)
    b = join_reply(d, d.join("g", client_id="b")).member_id
    second = d.join("g", b, rebalance_timeout_ms=10_000)
    d.advance(1_000)  # the delay ends, but a member arrived: wait one more delay
    assert first not in d.replies
    assert d.coordinator.next_deadline() == 6_000
    d.advance(3_000)
    assert join_reply(d, first).generation_id == 1
    assert len(join_reply(d, first).members) == 2
    assert join_reply(d, second).error == E.NONE


def test_initial_delay_is_bounded_by_the_rebalance_timeout() -> None:
    d = MemoryDriver(config=GroupConfig(initial_rebalance_delay_ms=3_000))
    a = join_reply(d, d.join("g", client_id="a")).member_id
    first = d.join("g", a, rebalance_timeout_ms=7_000)

    def newcomer(at_ms: int) -> None:
        d.advance(at_ms - d.now_ms)
        m = join_reply(d, d.join("g", client_id=f"n{at_ms}")).member_id
        d.join("g", m, rebalance_timeout_ms=7_000)

    newcomer(1_000)  # deadline 3 s -> extended to 6 s (1 s of the timeout left)
    newcomer(4_000)  # deadline 6 s -> extended to 7 s (the timeout is used up)
    newcomer(6_500)  # no more extensions
    assert first not in d.replies
    assert d.coordinator.next_deadline() == 7_000
    d.advance(500)
    reply = join_reply(d, first)
    assert len(reply.members) == 4
    assert reply.generation_id == 1


def test_pending_member_that_never_rejoins_expires_and_unblocks_the_join() -> None:
    d = MemoryDriver(config=NO_DELAY)
    a = join_reply(d, d.join("g", client_id="a")).member_id
    ghost = join_reply(d, d.join("g", client_id="ghost", session_timeout_ms=8_000)).member_id
    first = d.join("g", a)
    assert d.coordinator.describe("g").pending_members == (ghost,)  # type: ignore[union-attr]
    d.advance(7_999)
    assert first not in d.replies
    d.advance(1)
    assert join_reply(d, first).generation_id == 1
    assert join_reply(d, d.join("g", ghost)).error == E.UNKNOWN_MEMBER_ID


def test_members_waiting_for_answers_do_not_expire_by_session() -> None:
    d = MemoryDriver(config=NO_DELAY, auto_durable=False)
    ids = [join_reply(d, d.join("g", client_id=c)).member_id for c in "ab"]
    joins = [d.join("g", m, session_timeout_ms=6_000, rebalance_timeout_ms=60_000) for m in ids]
    generation = join_reply(d, joins[0]).generation_id
    waiting = d.sync("g", ids[1], generation)  # the follower waits for the leader
    d.advance(5_000)
    assert beat(d, ids[0], generation) == E.NONE
    d.advance(5_000)
    assert beat(d, ids[0], generation) == E.NONE
    assert waiting not in d.replies
    assert len(d.coordinator.describe("g").members) == 2  # type: ignore[union-attr]
    # The leader goes silent: it expires, and the waiting sync learns of the rebalance.
    d.advance(6_000)
    reply = d.reply(waiting)
    assert isinstance(reply, SyncReply)
    assert reply.error == E.REBALANCE_IN_PROGRESS


def test_tick_before_any_deadline_does_nothing() -> None:
    d = MemoryDriver(config=NO_DELAY)
    assert d.coordinator.next_deadline() is None
    assert d.coordinator.tick(123) == []
    form(d, 1)
    deadline = d.coordinator.next_deadline()
    assert deadline is not None
    assert d.coordinator.tick(deadline - 1) == []
