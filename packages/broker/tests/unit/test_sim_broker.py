"""The broker's simulation adapter end to end: scenarios run, pass, and replay exactly."""

from __future__ import annotations

import io
import json

from rift_broker.chaos_plugin import sim as broker_sim
from rift_broker.chaos_plugin.sim import simulation_system
from rift_chaos.sim.runner import run_scenario
from rift_chaos.sim.scenario import Scenario, draw_scenario, find_harness_factory
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
