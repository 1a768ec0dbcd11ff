"""The simulator finds planted bugs; the shipped broker passes the same seeds.

Each bug is planted by monkeypatching a broker core from here, in the test tree;
nothing in ``src`` knows about them. ``FOUND_AT`` records the first seed on which the
simulator finds each one (so it needed ``FOUND_AT + 1`` seeds). The fast test checks
that seed still finds the bug and that the shipped broker passes it; the ``slow``
tests check that no earlier seed finds it and that the shipped broker passes every
seed up to it (``-m slow``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from rift_broker.chaos_plugin.sim import simulation_system
from rift_broker.cluster.raft_store import FileRaftStorage
from rift_broker.raft import HardState
from rift_broker.replication import _following, manager
from rift_broker.replication._leader import AckDecision, LeaderPartition
from rift_broker.replication.manager import ReplicaManager
from rift_broker.replication.messages import NONE, PartitionAssignment
from rift_chaos.sim.runner import SimOutcome, run_scenario
from rift_chaos.sim.scenario import draw_scenario

# -- the bugs -----------------------------------------------------------------------


def ack_before_high_watermark(mp: pytest.MonkeyPatch) -> None:
    """acks=all answered once the leader has the batch, before the HW covers it."""

    def ack_decision(self: LeaderPartition, *, last_offset: int) -> AckDecision:
        if len(self.isr) >= self.min_insync_replicas:
            return AckDecision.ACK
        return AckDecision.NOT_ENOUGH_REPLICAS

    mp.setattr(LeaderPartition, "ack_decision", ack_decision)


def skip_leader_epoch_fencing(mp: pytest.MonkeyPatch) -> None:
    """The leader serves requests of any epoch; followers take answers of any epoch."""

    def check_epoch(self: ReplicaManager, replica: Any, epoch: int) -> int:
        if replica is None:
            return 3
        return NONE if replica.leader is not None else 6

    original = ReplicaManager._on_fetch_response

    def on_fetch_response(self: ReplicaManager, response: Any, now_ms: int) -> Any:
        replica = self._replicas.get((response.topic, response.partition))
        if replica is not None and replica.follower is not None:
            follower = replica.follower
            response = type(response)(
                **{
                    **{f: getattr(response, f) for f in response.__slots__},
                    "src": follower.leader,
                    "leader_epoch": follower.leader_epoch,
                }
            )
        return original(self, response, now_ms)

    mp.setattr(ReplicaManager, "_check_epoch", check_epoch)
    mp.setattr(ReplicaManager, "_on_fetch_response", on_fetch_response)


def truncate_to_high_watermark(mp: pytest.MonkeyPatch) -> None:
    """A new follower cuts its log at its high watermark, not where the epochs diverge."""
    original = ReplicaManager._on_epoch_answer
    hw: list[int] = []

    def on_epoch_answer(self: ReplicaManager, answer: Any, now_ms: int) -> Any:
        replica = self._replicas.get((answer.topic, answer.partition))
        if replica is not None and replica.follower is not None:
            hw.append(replica.follower.high_watermark)
        try:
            return original(self, answer, now_ms)
        finally:
            hw.clear()

    def truncation_offset(*, local_log_end_offset: int, **_: Any) -> int:
        return min(hw[-1], local_log_end_offset) if hw else local_log_end_offset

    mp.setattr(ReplicaManager, "_on_epoch_answer", on_epoch_answer)
    mp.setattr(_following, "truncation_offset", truncation_offset)


def skip_vote_fsync(mp: pytest.MonkeyPatch) -> None:
    """The Raft vote is never made durable: only a new term is (with no vote).

    After a crash the node comes back knowing the term but not whom it voted for in
    it, so it may vote a second time in the same term.
    """
    original = FileRaftStorage._save_hard_state

    def save(self: FileRaftStorage, state: HardState) -> None:
        if state.term != self.hard_state.term:
            original(self, HardState(term=state.term, voted_for=None))
        self.hard_state = state  # the vote lives in memory only

    mp.setattr(FileRaftStorage, "_save_hard_state", save)


def deposed_leader_keeps_serving(mp: pytest.MonkeyPatch) -> None:
    """A leader told that another node leads now keeps serving as leader."""
    original = ReplicaManager.apply

    def apply(self: ReplicaManager, assignment: PartitionAssignment, *, now_ms: int) -> Any:
        replica = self._replicas.get((assignment.topic, assignment.partition))
        if (
            replica is not None
            and replica.leader is not None
            and assignment.leader != self.node_id
            and self.node_id in assignment.replicas
        ):
            replica.assignment = assignment
            return []
        return original(self, assignment, now_ms=now_ms)

    mp.setattr(ReplicaManager, "apply", apply)


def retention_past_high_watermark(mp: pytest.MonkeyPatch) -> None:
    """Retention bounded by what is fsynced only, not by the high watermark.

    A replica then deletes segments nobody has committed yet: on a leader whose
    followers lag, records it acknowledges later (or never can) and records the
    followers still have to fetch.
    """

    def retention_limit(*, high_watermark: int, flushed_offset: int) -> int:
        return flushed_offset

    mp.setattr(manager, "retention_limit", retention_limit)


BUGS: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "ack-before-high-watermark": ack_before_high_watermark,
    "skip-leader-epoch-fencing": skip_leader_epoch_fencing,
    "truncate-to-high-watermark": truncate_to_high_watermark,
    "skip-vote-fsync": skip_vote_fsync,
    "deposed-leader-keeps-serving": deposed_leader_keeps_serving,
    "retention-past-high-watermark": retention_past_high_watermark,
}

#: Per bug: the first seed (from 0) on which the simulator finds it, not counting
#: seeds the shipped broker fails too; so it needed that many seeds + 1. Measured
#: with the scenarios of rift_chaos.sim.scenario as written (they change if it does):
#: run a bug's seeds until one fails, e.g. with ``run`` below under ``planted``.
#: Half the scenarios run with retention (tiny segments, size retention and a
#: maintenance timer), which changed the runs of those seeds: the first findings
#: moved from 5, 4 and 466 to 0, 2 and 924.
FOUND_AT: dict[str, int] = {
    "ack-before-high-watermark": 0,
    "deposed-leader-keeps-serving": 2,
    "truncate-to-high-watermark": 5,
    "skip-leader-epoch-fencing": 924,
    "skip-vote-fsync": 536,
    "retention-past-high-watermark": 177,
}

#: Seeds (up to the largest FOUND_AT) the *shipped* broker fails: real findings,
#: reported to the broker's owners in the report of issue 7. They do not count as
#: finding a planted bug. None now: the liveness failures once listed here (a topic
#: left without partitions when its controller died half-way through replicating the
#: decision) were a controller bug, fixed by proposing each decision as one entry.
KNOWN_BROKER_FAILURES: dict[int, str] = {}

FOUND = sorted(FOUND_AT)


@contextmanager
def planted(name: str) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        BUGS[name](mp)
        yield


def run(seed: int) -> SimOutcome:
    return run_scenario(draw_scenario(seed), harness_factory=simulation_system)


@functools.cache
def shipped(seed: int) -> SimOutcome:
    return run(seed)


@pytest.mark.parametrize("bug", FOUND)
def test_the_simulator_finds_the_planted_bug_where_the_shipped_broker_passes(bug: str) -> None:
    seed = FOUND_AT[bug]
    with planted(bug):
        outcome = run(seed)
    assert not outcome.passed, f"{bug}: seed {seed} no longer finds it"
    assert shipped(seed).passed, shipped(seed).problems


@pytest.mark.slow
@pytest.mark.parametrize("bug", FOUND)
def test_no_earlier_seed_finds_the_bug_and_the_shipped_broker_passes_them_all(bug: str) -> None:
    seeds = [s for s in range(FOUND_AT[bug]) if s not in KNOWN_BROKER_FAILURES]
    with planted(bug):
        earlier = [s for s in seeds if not run(s).passed]
    assert earlier == [], f"{bug} is found sooner now: update FOUND_AT"
    failing = [s for s in seeds if not shipped(s).passed]
    assert failing == [], f"the shipped broker fails seeds {failing}"


def test_planted_bugs_leave_nothing_behind() -> None:
    with planted("ack-before-high-watermark"):
        assert LeaderPartition.ack_decision is not _ORIGINAL_ACK_DECISION
    assert LeaderPartition.ack_decision is _ORIGINAL_ACK_DECISION


_ORIGINAL_ACK_DECISION = LeaderPartition.ack_decision
