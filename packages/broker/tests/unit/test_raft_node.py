"""Targeted tests of RaftNode: the Ready contract, elections, pre-vote and
check-quorum, durable votes, snapshots and compaction."""

from __future__ import annotations

import random

import pytest

from rift_broker.raft import (
    NOOP,
    AppendEntries,
    AppendEntriesResponse,
    Entry,
    HardState,
    InstallSnapshot,
    MemoryRaftStorage,
    Message,
    NotLeader,
    PersistentState,
    PreVoteRequest,
    PreVoteResponse,
    RaftConfig,
    RaftNode,
    Role,
    VoteRequest,
    VoteResponse,
)
from rift_broker.raft.testing import SimCluster

CONFIG = RaftConfig(election_timeout_ms=100, heartbeat_interval_ms=20, snapshot_threshold=0)


def make_node(node_id: int = 1, voters: tuple[int, ...] = (1, 2, 3), **kwargs: object) -> RaftNode:
    return RaftNode(node_id, voters, now_ms=0, next_timeout=lambda: 150, config=CONFIG, **kwargs)  # type: ignore[arg-type]


def elected_cluster(size: int = 3, seed: int = 1, **kwargs: object) -> SimCluster:
    cluster = SimCluster(size, random.Random(seed), **kwargs)  # type: ignore[arg-type]
    assert cluster.run_until(lambda: cluster.leader() is not None, within_ms=5_000)
    cluster.run_for(200)
    return cluster


def test_single_node_elects_itself_and_commits_in_one_ready() -> None:
    node = make_node(1, (1,))
    node.tick(149)
    assert node.role is Role.FOLLOWER
    node.tick(150)
    assert node.is_leader
    assert node.term == 1
    ready = node.ready()
    assert ready.hard_state == HardState(term=1, voted_for=1)
    assert [e.command for e in ready.entries] == [NOOP]
    assert ready.committed == ready.entries  # persisted first, then applied
    assert node.propose(b"a") == 2
    ready = node.ready()
    assert [e.index for e in ready.entries] == [2]
    assert [e.command for e in ready.committed] == [b"a"]
    assert node.ready().empty


def test_vote_response_travels_with_the_hard_state_it_depends_on() -> None:
    node = make_node(1)
    node.receive(VoteRequest(src=2, dst=1, term=3, last_log_index=0, last_log_term=0), now_ms=10)
    ready = node.ready()
    assert ready.hard_state == HardState(term=3, voted_for=2)
    assert ready.messages == (VoteResponse(src=1, dst=2, term=3, granted=True),)


def test_a_persisted_vote_is_not_given_again_in_the_same_term_after_restart() -> None:
    storage = MemoryRaftStorage()
    node = make_node(1)
    node.receive(VoteRequest(src=2, dst=1, term=5, last_log_index=0, last_log_term=0), now_ms=10)
    storage.persist(node.ready())
    restarted = make_node(1, state=storage.load())  # crash: only the storage survives
    assert restarted.hard_state == HardState(term=5, voted_for=2)
    restarted.receive(VoteRequest(src=3, dst=1, term=5, last_log_index=9, last_log_term=4), 20)
    assert restarted.ready().messages == (VoteResponse(src=1, dst=3, term=5, granted=False),)
    restarted.receive(VoteRequest(src=2, dst=1, term=5, last_log_index=0, last_log_term=0), 30)
    assert restarted.ready().messages == (VoteResponse(src=1, dst=2, term=5, granted=True),)


def test_an_unpersisted_vote_was_never_sent() -> None:
    # The crash happens before the Ready is handled: the vote and its response die together.
    storage = MemoryRaftStorage()
    node = make_node(1)
    node.receive(VoteRequest(src=2, dst=1, term=5, last_log_index=0, last_log_term=0), now_ms=10)
    assert node.has_ready()
    restarted = make_node(1, state=storage.load())
    assert restarted.hard_state == HardState()


def test_vote_refused_to_a_candidate_with_an_older_log() -> None:
    node = make_node(1, state=PersistentState(hard_state=HardState(term=2)))
    entry = Entry(term=2, index=1, command=b"x")
    heartbeat = AppendEntries(
        src=2, dst=1, term=2, prev_log_index=0, prev_log_term=0, entries=(entry,), commit=0
    )
    node.receive(heartbeat, now_ms=0)
    node.ready()
    # Out of the lease (last contact at 0, timeout 100), but the candidate's log is older.
    node.receive(VoteRequest(src=3, dst=1, term=3, last_log_index=5, last_log_term=1), 500)
    assert node.ready().messages == (VoteResponse(src=1, dst=3, term=3, granted=False),)
    assert node.term == 3  # the term moves even when the vote is refused


def test_follower_in_lease_ignores_vote_requests_of_higher_terms() -> None:
    node = make_node(1)
    node.receive(
        AppendEntries(
            src=2, dst=1, term=1, prev_log_index=0, prev_log_term=0, entries=(), commit=0
        ),
        now_ms=0,
    )
    node.ready()
    node.receive(VoteRequest(src=3, dst=1, term=7, last_log_index=9, last_log_term=9), 50)
    node.receive(PreVoteRequest(src=3, dst=1, term=7, last_log_index=9, last_log_term=9), 60)
    assert node.ready().messages == ()
    assert node.term == 1
    assert node.leader_id == 2


def test_pre_vote_does_not_move_the_term() -> None:
    node = make_node(1)
    node.tick(150)
    assert node.role is Role.PRE_CANDIDATE
    assert node.term == 0
    ready = node.ready()
    assert ready.hard_state is None
    assert {m.dst for m in ready.messages} == {2, 3}
    assert all(isinstance(m, PreVoteRequest) and m.term == 1 for m in ready.messages)


def test_isolated_follower_rejoining_does_not_depose_the_leader() -> None:
    cluster = elected_cluster(3)
    leader = cluster.leader()
    assert leader is not None
    term = leader.term
    follower = next(i for i in cluster.ids if i != leader.node_id)
    cluster.partition([i for i in cluster.ids if i != follower], [follower])
    cluster.run_for(3_000)  # twenty election timeouts
    isolated = cluster.nodes[follower]
    assert isolated is not None
    assert isolated.term == term  # pre-vote: never won a pre-vote, never bumped its term
    cluster.heal()
    cluster.run_for(1_000)
    assert cluster.leader() is leader
    assert leader.term == term
    assert isolated.leader_id == leader.node_id


def test_leader_isolated_from_the_majority_steps_down_and_commits_nothing() -> None:
    cluster = elected_cluster(5)
    old = cluster.leader()
    assert old is not None
    others = [i for i in cluster.ids if i != old.node_id]
    cluster.partition([old.node_id], others)
    index = cluster.propose(old.node_id, b"lost")
    assert isinstance(index, int)
    cluster.run_for(2 * cluster.config.election_timeout_ms)
    assert old.role is not Role.LEADER  # check-quorum
    assert old.commit_index < index
    new = cluster.leader()
    assert new is not None
    assert new.node_id in others
    assert new.term > old.term
    assert cluster.propose(new.node_id, b"kept") is not None
    cluster.heal()
    cluster.run_for(1_000)
    assert old.leader_id == new.node_id
    assert b"lost" not in cluster.state[old.node_id]
    assert b"kept" in cluster.state[old.node_id]


def test_not_leader_names_the_leader() -> None:
    cluster = elected_cluster(3)
    leader = cluster.leader()
    assert leader is not None
    follower = next(i for i in cluster.ids if i != leader.node_id)
    assert cluster.propose(follower, b"x") == NotLeader(leader_id=leader.node_id, term=leader.term)


def test_lagging_follower_catches_up_through_a_snapshot() -> None:
    config = RaftConfig(election_timeout_ms=150, heartbeat_interval_ms=30, snapshot_threshold=5)
    cluster = elected_cluster(3, config=config)
    leader = cluster.leader()
    assert leader is not None
    lagging = next(i for i in cluster.ids if i != leader.node_id)
    cluster.crash(lagging)
    for n in range(30):
        cluster.propose(leader.node_id, b"c%d" % n)
        cluster.run_for(10)
    cluster.run_for(200)
    assert leader.log.offset >= 25  # compacted below the snapshot
    sent: list[Message] = []
    original = cluster._send

    def spy(message: Message) -> None:
        sent.append(message)
        original(message)

    cluster._send = spy  # type: ignore[method-assign]
    cluster.restart(lagging)
    cluster.run_for(500)
    assert any(isinstance(m, InstallSnapshot) and m.dst == lagging for m in sent)
    node = cluster.nodes[lagging]
    assert node is not None
    assert node.applied_index == leader.applied_index
    assert cluster.state[lagging] == cluster.state[leader.node_id]
    assert cluster.storage[lagging].snapshot is not None


def test_compaction_survives_restart() -> None:
    config = RaftConfig(election_timeout_ms=150, heartbeat_interval_ms=30, snapshot_threshold=4)
    cluster = elected_cluster(1, config=config)
    leader = cluster.leader()
    assert leader is not None
    for n in range(10):
        cluster.propose(leader.node_id, b"c%d" % n)
    storage = cluster.storage[leader.node_id]
    assert storage.snapshot is not None
    assert storage.snapshot.index == leader.log.offset
    assert all(e.index > storage.snapshot.index for e in storage.entries)
    before = list(cluster.state[leader.node_id])
    cluster.crash(leader.node_id)
    cluster.restart(leader.node_id)
    assert cluster.run_until(lambda: cluster.leader() is not None, within_ms=1_000)
    cluster.run_for(100)
    assert cluster.state[leader.node_id][: len(before)] == before


def test_compact_rejects_an_unapplied_index() -> None:
    node = make_node(1, (1,))
    node.tick(150)
    node.ready()
    with pytest.raises(ValueError, match="snapshot index"):
        node.compact(5, b"")


def test_stale_leader_steps_down_when_answered_with_a_higher_term() -> None:
    node = make_node(1, (1, 2, 3))
    node.tick(150)
    node.receive(PreVoteResponse(src=2, dst=1, term=1, granted=True), 151)
    node.receive(VoteResponse(src=2, dst=1, term=1, granted=True), 152)
    assert node.is_leader
    node.ready()
    node.receive(
        AppendEntries(
            src=3, dst=1, term=4, prev_log_index=0, prev_log_term=0, entries=(), commit=0
        ),
        160,
    )
    assert node.role is Role.FOLLOWER
    assert node.term == 4
    assert node.leader_id == 3


def test_boundary_errors() -> None:
    with pytest.raises(ValueError, match="not one of the voters"):
        make_node(4, (1, 2, 3))
    with pytest.raises(ValueError, match="must exceed"):
        RaftConfig(election_timeout_ms=10, heartbeat_interval_ms=10)
    with pytest.raises(ValueError, match="below election_timeout_ms"):
        RaftNode(1, (1,), now_ms=0, next_timeout=lambda: 5, config=CONFIG)
    node = make_node(1, (1,))
    with pytest.raises(ValueError, match="reserved"):
        node.propose(b"")


def test_only_entries_of_the_current_term_commit_by_counting() -> None:
    # Raft's Figure 8: an entry of an older term on a majority is not yet committed.
    old = (Entry(term=1, index=1, command=b"a"), Entry(term=2, index=2, command=b"b"))
    state = PersistentState(hard_state=HardState(term=3), entries=old)
    node = make_node(1, (1, 2, 3, 4, 5), state=state)
    node.tick(150)
    for peer in (2, 3):
        node.receive(PreVoteResponse(src=peer, dst=1, term=4, granted=True), 151)
    for peer in (2, 3):
        node.receive(VoteResponse(src=peer, dst=1, term=4, granted=True), 152)
    assert node.is_leader
    assert node.log.last_index == 3  # the no-op of term 4
    for peer in (2, 3):
        node.receive(
            AppendEntriesResponse(src=peer, dst=1, term=4, success=True, match_index=2, hint=0),
            153,
        )
    assert node.commit_index == 0  # index 2 is on a majority, but of term 2
    node.receive(
        AppendEntriesResponse(src=2, dst=1, term=4, success=True, match_index=3, hint=0), 154
    )
    assert node.commit_index == 0
    node.receive(
        AppendEntriesResponse(src=3, dst=1, term=4, success=True, match_index=3, hint=0), 155
    )
    assert node.commit_index == 3  # the no-op commits, and everything before it
    assert [e.index for e in node.ready().committed] == [1, 2, 3]
