"""The scenario runner, the shrinker and ``chaos sim`` over a toy system.

The toy is one server (``n1``) keeping a list of values; clients send values and get
their offset back; a final read returns the list. With ``durable=False`` a kill
loses the list, so acknowledged values vanish: the runner must see it (through the
checker), and shrinking must boil the schedule down to the kill of ``n1``.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest

from rift_chaos import cli
from rift_chaos.sim import NodeContext, Simulation
from rift_chaos.sim import command as sim_command
from rift_chaos.sim import runner as sim_runner
from rift_chaos.sim.runner import run_scenario
from rift_chaos.sim.scenario import Fault, InvariantViolation, Scenario, draw_scenario
from rift_chaos.sim.shrink import shrink

NS = 1_000_000


class Server:
    def __init__(self, store: list[int]) -> None:
        self.store = store

    def start(self, ctx: NodeContext) -> None:
        pass

    def timer(self, ctx: NodeContext, name: str) -> None:
        pass

    def receive(self, ctx: NodeContext, src: str, message: Any) -> None:
        kind, request, value = message
        if kind == "send":
            if value not in self.store:  # the network may duplicate a message
                self.store.append(value)
            ctx.send(src, ("ok", request, self.store.index(value)))
            ctx.observe("stored", value)  # a moment kill-at faults can strike at
        else:
            ctx.send(src, ("records", request, list(enumerate(self.store))))


class ToySystem:
    def __init__(self, nodes: tuple[str, ...], *, durable: bool) -> None:
        self.disks: dict[str, list[int]] = {n: [] for n in nodes}
        self.durable = durable

    def create(self, name: str) -> Server:
        return Server(self.disks[name])

    def crash_disk(self, name: str, rng: random.Random) -> None:
        if not self.durable:
            self.disks[name].clear()


class Client:
    """Sends every op's value to n1; no answer in 200ms is an ``info``."""

    def __init__(self, history: Any, times: list[int], slot: int, final_at: int | None) -> None:
        self.history, self.times, self.slot, self.final_at = history, times, slot, final_at
        self.process = slot
        self.busy = False
        self.request = 0
        self.done = False

    def start(self, ctx: NodeContext) -> None:
        for i, at in enumerate(self.times):
            ctx.set_timer(f"op{i}", at)
        if self.final_at is not None:
            ctx.set_timer("final", self.final_at)

    def timer(self, ctx: NodeContext, name: str) -> None:
        now = ctx.now_ms * NS
        if name == "final":
            self.request += 1
            self.history.invoke(process=99, f="final-read", time=now)
            ctx.send("n1", ("read", self.request, None))
        elif name == "timeout" and self.busy:
            self.busy = False
            self.history.info(process=self.process, error="timeout", time=now)
            self.process += 10
        elif name.startswith("op") and not self.busy:
            self.busy = True
            self.request += 1
            value = self.slot * 1000 + int(name[2:])
            self.value = {"topic": "t", "partition": 0, "value": value}
            self.history.invoke(process=self.process, f="send", value=self.value, time=now)
            ctx.send("n1", ("send", self.request, value))
            ctx.set_timer("timeout", 200)

    def receive(self, ctx: NodeContext, src: str, message: Any) -> None:
        kind, request, value = message
        now = ctx.now_ms * NS
        if request != self.request:
            return
        if kind == "ok" and self.busy:
            self.busy = False
            self.history.ok(process=self.process, value={**self.value, "offset": value}, time=now)
            ctx.set_timer("timeout", 1 << 40)
        elif kind == "records" and not self.done:
            records = [[o, v] for o, v in value]
            self.history.ok(process=99, value={"records": {"t/0": records}}, time=now)
            self.done = True


class ToyHarness:
    def __init__(self, scenario: Scenario, *, durable: bool = True, explode_at: int | None = None):
        self.scenario = scenario
        self.system = ToySystem(scenario.nodes, durable=durable)
        self.explode_at = explode_at
        self.reader: Client | None = None

    def install(self, sim: Simulation, history: Any) -> None:
        for slot in range(self.scenario.clients):
            times = [op.at_ms for op in self.scenario.ops if op.process == slot]
            sim.add_node(f"c{slot}", Client(history, times, slot, None))
        self.reader = Client(history, [], 50, self.scenario.end_ms)
        sim.add_node("final", self.reader)
        if self.explode_at is not None:

            def explode() -> None:
                raise InvariantViolation("planted")

            sim.call_at(self.explode_at, explode, label="explode")

    @property
    def final_read_done(self) -> bool:
        return self.reader is not None and self.reader.done

    def finish(self) -> list[str]:
        return []


def durable(scenario: Scenario) -> ToyHarness:
    return ToyHarness(scenario, durable=True)


def forgetful(scenario: Scenario) -> ToyHarness:
    return ToyHarness(scenario, durable=False)


def kills_n1(scenario: Scenario) -> bool:
    return any(f.kind == "kill" and f.node == "n1" for f in scenario.faults)


def test_a_correct_system_passes_and_the_trace_hash_is_reproducible() -> None:
    for seed in range(5):
        first = run_scenario(draw_scenario(seed), harness_factory=durable)
        assert first.passed, first.problems
        assert first.verdict is True
        again = run_scenario(draw_scenario(seed), harness_factory=durable)
        assert again.trace_hash == first.trace_hash


def test_lost_acknowledged_writes_fail_the_scenario_through_the_checker() -> None:
    seed = next(s for s in range(200) if kills_n1(draw_scenario(s)))
    outcome = run_scenario(draw_scenario(seed), harness_factory=forgetful)
    assert not outcome.passed
    assert any(p.startswith("checker: ") for p in outcome.problems)


def test_an_invariant_raised_inside_the_simulation_fails_the_scenario() -> None:
    outcome = run_scenario(
        draw_scenario(1), harness_factory=lambda s: ToyHarness(s, explode_at=1_500)
    )
    assert outcome.problems == ["invariant: planted"]


def test_shrinking_boils_a_failure_down_to_the_kill_that_causes_it() -> None:
    seed = next(
        s for s in range(200) if kills_n1(draw_scenario(s)) and len(draw_scenario(s).faults) > 2
    )
    scenario = draw_scenario(seed)

    def fails(s: Scenario) -> bool:
        return not run_scenario(s, harness_factory=forgetful).passed

    assert fails(scenario)
    shrunk = shrink(scenario, fails, budget=200)
    assert fails(shrunk.scenario)
    assert len(shrunk.faults) == 1
    assert shrunk.scenario.faults[0].kind == "kill"
    assert shrunk.scenario.faults[0].node == "n1"
    assert len(shrunk.ops) < len(scenario.ops)
    assert shrunk.replay_args().startswith(f"--keep-faults {shrunk.faults[0]} --keep-ops ")


def killed_at_stored(seed: int, *, down_ms: int) -> Scenario:
    """The seed's scenario with one fault: kill whoever stores a value, until the end."""
    scenario = draw_scenario(seed)
    fault = Fault(
        kind="kill-at",
        start_ms=1,
        end_ms=scenario.fault_end_ms,
        points=("stored",),
        down_ms=down_ms,
    )
    return scenario.without(faults=(fault,))


def test_kill_at_kills_whoever_reports_the_moment_after_its_answer_left() -> None:
    scenario = killed_at_stored(1, down_ms=5)
    harness = ToyHarness(scenario, durable=True)
    outcome = run_scenario(scenario, harness_factory=lambda s: harness, keep_history=True)
    assert outcome.passed, outcome.problems
    kills = [line for line in outcome.history.splitlines() if '"start-kill-at"' in line]
    stored = [line for line in outcome.history.splitlines() if '"ok"' in line and "offset" in line]
    assert kills
    assert stored
    assert all("-> n1" in line for line in kills)  # only n1 stores anything
    # Each stored value killed n1 (an invoke and an ok per kill) once the answer was on
    # its way - answers still arrived - and n1 came back every time.
    assert len(kills) >= 2 * len(stored)
    restarts = [line for line in outcome.history.splitlines() if '"stop-kill-at"' in line]
    assert len(restarts) == len(kills)


def test_kill_at_loses_what_the_node_had_not_made_durable() -> None:
    outcome = run_scenario(killed_at_stored(1, down_ms=5), harness_factory=forgetful)
    assert not outcome.passed
    assert any(p.startswith("checker: ") for p in outcome.problems)


def test_kill_at_is_deterministic_and_ends_with_its_window() -> None:
    scenario = killed_at_stored(2, down_ms=300)
    short = scenario.without(faults=(dataclasses.replace(scenario.faults[0], end_ms=1),))
    first = run_scenario(scenario, harness_factory=durable)
    again = run_scenario(scenario, harness_factory=durable)
    assert first.trace_hash == again.trace_hash
    assert run_scenario(short, harness_factory=durable).trace_hash != first.trace_hash


@pytest.fixture
def toy_system(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sim_command, "find_harness_factory", lambda name: forgetful)
    monkeypatch.setattr(sim_runner, "_factory", lambda name: forgetful)


def test_chaos_sim_seeds_reports_failures_with_their_replay_line(
    toy_system: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["sim", "--seeds", "6", "--jobs", "1", "--system", "toy", "--no-shrink"])
    out = capsys.readouterr().out
    failing = [s for s in range(6) if kills_n1(draw_scenario(s))]
    assert code == (1 if failing else 0)
    for seed in failing:
        assert f"chaos sim --seed {seed} --system toy" in out
    assert "scenarios/s" in out
    assert "simulated s per wall s" in out


def test_chaos_sim_seed_replays_with_a_trace_and_checks_determinism(
    toy_system: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["sim", "--seed", "2", "--system", "toy", "--check-determinism"])
    out = capsys.readouterr().out
    assert "recv c0->n1 tuple" in out
    assert "determinism: same trace hash" in out
    assert code == (1 if kills_n1(draw_scenario(2)) else 0)


def test_chaos_sim_seed_shrinks_a_failure_and_prints_the_smaller_replay_line(
    toy_system: None, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = next(s for s in range(200) if kills_n1(draw_scenario(s)))
    code = cli.main(["sim", "--seed", str(seed), "--system", "toy", "--no-trace"])
    out = capsys.readouterr().out
    assert code == 1
    assert f"chaos sim --seed {seed} --system toy --keep-faults" in out
    replayed = cli.main(
        ["sim", "--seed", str(seed), "--system", "toy", "--no-trace", "--keep-faults", "none"]
    )
    assert replayed == 0
