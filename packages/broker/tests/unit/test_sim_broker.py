"""The broker's simulation adapter end to end: scenarios run, pass, and replay exactly."""

from __future__ import annotations

import io
import json
from dataclasses import replace

from rift_broker.chaos_plugin import sim as broker_sim
from rift_broker.chaos_plugin._sim_messages import ReadCall
from rift_broker.chaos_plugin.sim import simulation_system
from rift_broker.cluster.raft_store import FileRaftStorage
from rift_broker.raft import HardState, Ready
from rift_broker.replication.messages import OFFSET_NOT_AVAILABLE
from rift_chaos.sim.runner import SimOutcome, run_scenario
from rift_chaos.sim.scenario import Fault, Scenario, draw_scenario, find_harness_factory
from rift_chaos.sim.shrink import restrict
from rift_checker import check_history


def quiet(seed: int) -> Scenario:
    """The seed's scenario without faults."""
    return restrict(draw_scenario(seed), faults=[], ops=range(len(draw_scenario(seed).ops)))


def test_chaos_finds_the_adapter_next_to_the_registered_system() -> None:
    assert find_harness_factory("rift-broker") is broker_sim.simulation_system


def test_a_quiet_scenario_acknowledges_sends_and_reads_them_all_back() -> None:
    outcome = run_scenario(quiet(1), harness_factory=simulation_system, keep_history=True)
    assert outcome.passed, outcome.problems
    events = [json.loads(line) for line in outcome.history.splitlines()[1:]]
    acked = [e for e in events if e["f"] == "send" and e["type"] == "ok"]
    assert acked, "no send was acknowledged"
    final = [e for e in events if e["f"] == "final-read" and e["type"] == "ok"]
    assert len(final) == 1
    read = {v for records in final[0]["value"]["records"].values() for _, v in records}
    assert {e["value"]["value"] for e in acked} <= read
    kinds = {e["f"] for e in events if e["type"] == "observe"}
    assert kinds == {"leader", "high-watermark"}
    assert all(e["time"] % 1_000_000 == 0 for e in events)  # virtual ms, in ns
    assert check_history(io.StringIO(outcome.history)).valid is True


def test_scenarios_with_faults_pass_on_the_shipped_broker() -> None:
    for seed in range(6):
        outcome = run_scenario(draw_scenario(seed), harness_factory=simulation_system)
        assert outcome.passed, (seed, outcome.problems)
        assert outcome.verdict is True


def test_the_same_seed_gives_the_same_trace_hash() -> None:
    scenario = draw_scenario(3)
    first = run_scenario(scenario, harness_factory=simulation_system)
    second = run_scenario(draw_scenario(3), harness_factory=simulation_system)
    other = run_scenario(draw_scenario(4), harness_factory=simulation_system)
    assert first.trace_hash == second.trace_hash
    assert first.steps == second.steps
    assert first.trace_hash != other.trace_hash


def test_a_kill_loses_unsynced_writes_on_the_nodes_disk() -> None:
    harness = simulation_system(quiet(2))
    disk = harness.system.disks["n1"]
    disk.make_dirs("/x")
    f = disk.open("/x/f")
    f.append(b"durable")
    f.fsync()
    f.append(b"-lost")
    import random

    harness.system.crash_disk("n1", random.Random(0))
    assert disk.contents("/x/f").startswith(b"durable")
    assert len(disk.contents("/x/f")) < len(b"durable-lost")


def test_the_trace_hash_does_not_depend_on_the_interpreters_hash_seed() -> None:
    import os
    import subprocess
    import sys

    code = (
        "from rift_broker.chaos_plugin.sim import simulation_system as f\n"
        "from rift_chaos.sim.runner import run_scenario\n"
        "from rift_chaos.sim.scenario import draw_scenario\n"
        "print(run_scenario(draw_scenario(5), harness_factory=f).trace_hash)\n"
    )
    hashes = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": str(h)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for h in (1, 2)
    }
    assert len(hashes) == 1
    assert hashes == {run_scenario(draw_scenario(5), harness_factory=simulation_system).trace_hash}


def capture(scenario: Scenario) -> tuple[broker_sim.BrokerSimHarness, SimOutcome]:
    made: list[broker_sim.BrokerSimHarness] = []

    def factory(s: Scenario) -> broker_sim.BrokerSimHarness:
        made.append(simulation_system(s))
        return made[-1]

    outcome = run_scenario(scenario, harness_factory=factory, trace=True)
    return made[0], outcome


def test_nodes_report_votes_and_elections_and_kill_at_strikes_there() -> None:
    scenario = quiet(2)
    fault = Fault(kind="kill-at", start_ms=1, end_ms=3_000, points=("vote",), down_ms=10)
    _, outcome = capture(scenario.without(faults=(fault,)))
    assert outcome.passed, outcome.problems
    votes = [line for line in outcome.trace if " observe " in line and " vote " in line]
    assert votes
    assert "'candidate': 'n" in votes[0]
    assert any(" observe " in line and " elected " in line for line in outcome.trace)
    # The first vote kills its voter at once; it comes back 10 ms later.
    voter = votes[0].split()[2]
    at = int(votes[0].split()[0])
    assert f"{at} kill {voter}" in outcome.trace
    assert f"{at + 10} restart {voter}" in outcome.trace


def test_a_vote_persisted_by_a_sim_node_survives_a_kill_of_its_disk() -> None:
    import random

    harness = simulation_system(quiet(2))
    disk = harness.system.disks["n1"]
    store = FileRaftStorage(storage=disk, directory="/meta")
    store.persist(Ready(hard_state=HardState(term=3, voted_for=2)))
    harness.system.crash_disk("n1", random.Random(1))
    assert FileRaftStorage(storage=disk, directory="/meta").load().hard_state == HardState(
        term=3, voted_for=2
    )


def test_the_election_jitter_setting_bounds_the_election_timeouts() -> None:
    scenario = replace(quiet(2), settings={"election_jitter_ms": 20})
    harness = simulation_system(scenario)
    node = harness.system.create("n1")
    assert node._election_timeouts == (450, 469)
    default = simulation_system(replace(scenario, settings={}))
    assert default.system.create("n1")._election_timeouts == (450, 899)  # the broker's own


def test_the_run_ends_only_once_every_partition_has_a_settled_leader() -> None:
    harness, outcome = capture(quiet(1))
    assert outcome.passed, outcome.problems
    assert harness.unsettled() == []
    assert harness.final_read_done
    leader = harness.leader()
    assert leader is not None
    harness.system.crash_disk(leader, __import__("random").Random(0))
    assert not harness.final_read_done
    assert any("t/0 has no leader" in why or "Raft leader" in why for why in harness.unsettled())
    assert any(p.startswith("not settled at the end:") for p in harness.finish())


def test_a_leader_whose_high_watermark_trails_its_epoch_start_does_not_give_an_end() -> None:
    # A new leader's high watermark may trail what its predecessor acknowledged until
    # its followers fetch: a final read that took it for the end of the log stopped
    # short and reported acknowledged records as never read.
    harness, outcome = capture(quiet(1))
    assert outcome.passed, outcome.problems
    name = harness.leader()
    assert name is not None
    sim_node = harness.system.live[name]
    assert sim_node.node is not None
    leading = sim_node.node.replicas._replicas["t", 0].leader
    assert leading is not None
    hw = leading.high_watermark
    assert hw > 0
    at_end = ReadCall(request_id=1, topic="t", partition=0, offset=hw)
    replicas = sim_node.node.replicas
    assert sim_node._read(at_end).error == 0
    assert replicas.latest_offset("t", 0) == (0, hw)  # what the broker's ListOffsets says
    leading.epoch_start_offset = hw + 1  # as if it had just taken over
    assert sim_node._read(at_end).error == OFFSET_NOT_AVAILABLE
    assert replicas.latest_offset("t", 0) == (OFFSET_NOT_AVAILABLE, -1)
    below = sim_node._read(ReadCall(request_id=2, topic="t", partition=0, offset=0))
    assert below.error == 0  # what lies below the high watermark is served as ever
    assert below.records


def test_retention_deletes_segments_during_a_run_and_the_checks_allow_for_it() -> None:
    settings = {"segment_bytes": 150, "retention_bytes": 150, "maintain_interval_ms": 25}
    scenario = replace(quiet(1), settings=settings)
    harness = simulation_system(scenario)
    outcome = run_scenario(scenario, harness_factory=lambda _: harness, keep_history=True)
    assert outcome.passed, outcome.problems
    logs = [n.node.replicas.log("t", 0) for n in harness.system.live.values() if n.node is not None]
    assert all(log is not None and log.config.segment_bytes == 150 for log in logs)
    assert all(log is not None and log.log_start_offset > 0 for log in logs)
    events = [json.loads(line) for line in outcome.history.splitlines()[1:]]
    (final,) = [e for e in events if e["f"] == "final-read" and e["type"] == "ok"]
    start = final["value"]["log-start"]["t/0"]
    assert start > 0
    assert final["value"]["records"]["t/0"][0][0] == start
    acked = [e["value"]["offset"] for e in events if e["f"] == "send" and e["type"] == "ok"]
    assert min(acked) < start  # acknowledged records were deleted, and that is no loss
    assert check_history(io.StringIO(outcome.history)).valid is True
