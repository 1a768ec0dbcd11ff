"""Running scenarios: one to a verdict, many in parallel, and twice for determinism.

:func:`run_scenario` plays a :class:`~rift_chaos.sim.scenario.Scenario` on a
system's harness:

1. build the :class:`Simulation` (seeded with the scenario's seed) and let the
   harness add its client processes, then boot every node;
2. schedule each fault's start and end as calls in virtual time, logged to the
   history as nemesis operations (a ``kill-at`` fault watches the observations
   between the two for its moment, and kills and restarts the node that reported
   it); at ``fault_end_ms`` heal everything (network, clocks, paused and killed
   nodes);
3. run until the harness's final read is done and the system has settled (or
   ``FINAL_READ_LIMIT_MS`` more);
4. judge: an invariant the harness raised during the run, the harness's end-of-run
   invariants, then the checker on the history. Any of them makes the run fail.

The outcome carries the trace hash: the same scenario gives the same hash.
"""

from __future__ import annotations

import functools
import io
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from rift_chaos.nemesis import grudge as shapes
from rift_chaos.sim._node import Observation
from rift_chaos.sim._simulation import Simulation
from rift_chaos.sim.scenario import (
    Fault,
    InvariantViolation,
    Scenario,
    SimHarnessFactory,
    draw_scenario,
)
from rift_checker import HistoryWriter, check_history

__all__ = ["SimOutcome", "run_scenario", "run_seeds", "replay_line"]

NS_PER_MS = 1_000_000
FINAL_READ_LIMIT_MS = 10_000


@dataclass(slots=True, kw_only=True)
class SimOutcome:
    seed: int
    passed: bool
    problems: list[str]
    trace_hash: str
    steps: int
    simulated_ms: int
    wall_s: float
    verdict: Any = None  # the checker's validity
    trace: list[str] = field(default_factory=list)
    history: str = ""

    @property
    def headline(self) -> str:
        return self.problems[0] if self.problems else "ok"


def replay_line(seed: int, *, system: str = "rift-broker") -> str:
    return f"chaos sim --seed {seed} --system {system}"


def run_scenario(
    scenario: Scenario,
    *,
    harness_factory: SimHarnessFactory,
    trace: bool = False,
    keep_history: bool = False,
) -> SimOutcome:
    started = time.perf_counter()
    harness = harness_factory(scenario)
    sim = Simulation(
        system=harness.system,
        nodes=list(scenario.nodes),
        seed=scenario.seed,
        faults=scenario.link,
        trace=trace,
    )
    buffer = io.StringIO()
    history = HistoryWriter(
        buffer, metadata={"simulator": True, "seed": scenario.seed}, flush_every=1 << 30
    )
    harness.install(sim, history)
    _schedule(sim, scenario, history, harness)
    sim.boot()
    problems: list[str] = []
    try:
        sim.run(until_ms=scenario.end_ms)
        limit = scenario.end_ms + FINAL_READ_LIMIT_MS
        while not harness.final_read_done and sim.now_ms < limit:
            sim.run(until_ms=sim.now_ms + 250)
        if not harness.final_read_done:
            problems.append(
                f"the final read did not finish, or the system did not settle, within "
                f"{FINAL_READ_LIMIT_MS}ms after healing (the cluster did not recover)"
            )
        problems.extend(harness.finish())
    except InvariantViolation as exc:
        problems.append(f"invariant: {exc}")
    except Exception as exc:  # a node crashed: that is a finding too
        problems.append(f"invariant: a node crashed at {sim.now_ms}ms: {_where(exc)}")
    history.close()
    verdict: Any = None
    if not any(p.startswith("invariant:") for p in problems):
        result = check_history(io.StringIO(buffer.getvalue()))
        verdict = result.valid
        if result.valid is False:
            for check in result.checks:
                if check.status == "anomaly":
                    first = check.cases[0].explanation if check.cases else ""
                    problems.append(f"checker: {check.name}: {first}")
    return SimOutcome(
        seed=scenario.seed,
        passed=not problems,
        problems=problems,
        trace_hash=sim.trace_hash,
        steps=sim.steps,
        simulated_ms=sim.now_ms,
        wall_s=time.perf_counter() - started,
        verdict=verdict,
        trace=sim.trace,
        history=buffer.getvalue() if keep_history else "",
    )


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    last = frames[-1] if frames else None
    place = f" ({last.filename.rsplit('/', 1)[-1]}:{last.lineno} {last.name})" if last else ""
    return f"{type(exc).__name__}: {exc}{place}"


def _schedule(sim: Simulation, scenario: Scenario, history: HistoryWriter, harness: Any) -> None:
    def nemesis(f: str, value: Any, action: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            now = sim.now_ms * NS_PER_MS
            history.invoke(process="nemesis", f=f, value=value, time=now)
            action()
            history.ok(process="nemesis", value=value, time=now)

        return run

    kills = _KillsAt(sim, scenario, nemesis)
    sim.observers.append(kills.observe)
    for index, fault in enumerate(scenario.faults):
        label = f"fault{index}"
        if fault.kind == "kill-at":
            sim.call_at(fault.start_ms, functools.partial(kills.arm, fault), label=f"{label}-arm")
            sim.call_at(
                fault.end_ms, functools.partial(kills.disarm, fault), label=f"{label}-disarm"
            )
            continue
        start, stop = _actions(sim, fault, harness, scenario.nodes)
        sim.call_at(
            fault.start_ms,
            nemesis(f"start-{fault.kind}", fault.describe(), start),
            label=f"{label}-start",
        )
        sim.call_at(
            fault.end_ms,
            nemesis(f"stop-{fault.kind}", fault.describe(), stop),
            label=f"{label}-stop",
        )

    def heal_all() -> None:
        sim.heal()
        for name in scenario.nodes:
            sim.set_clock_offset(name, 0)
            sim.resume(name)
            sim.unclog(name)
            sim.restart(name)

    sim.call_at(scenario.fault_end_ms, nemesis("heal", None, heal_all), label="heal-all")


class _KillsAt:
    """The ``kill-at`` faults: while armed, each kills every node that reports its moment.

    The kill runs as its own event right after the one in which the node reported
    (whatever the node sent then is on the wire), and the restart ``down_ms`` later,
    at the latest when the faults end. Overlapping faults on one moment do not
    multiply: the earliest armed one acts.
    """

    def __init__(
        self,
        sim: Simulation,
        scenario: Scenario,
        nemesis: Callable[[str, Any, Callable[[], None]], Callable[[], None]],
    ) -> None:
        self._sim = sim
        self._nodes = frozenset(scenario.nodes)
        self._until_ms = scenario.fault_end_ms
        self._nemesis = nemesis
        self._armed: list[Fault] = []
        self._dying: set[str] = set()

    def arm(self, fault: Fault) -> None:
        self._armed.append(fault)

    def disarm(self, fault: Fault) -> None:
        self._armed = [f for f in self._armed if f is not fault]

    def observe(self, now_ms: int, observation: Observation) -> None:
        name = observation.node
        if name not in self._nodes or name in self._dying:
            return
        fault = next((f for f in self._armed if observation.kind in f.points), None)
        if fault is None:
            return
        sim, value = self._sim, f"{fault.describe()} -> {name}"
        self._dying.add(name)

        def kill() -> None:
            self._dying.discard(name)
            sim.kill(name)

        sim.call_at(now_ms, self._nemesis("start-kill-at", value, kill), label="kill-at")
        restart = self._nemesis("stop-kill-at", value, lambda: sim.restart(name))
        sim.call_at(min(now_ms + fault.down_ms, self._until_ms), restart, label="kill-at-restart")


def _actions(
    sim: Simulation, fault: Fault, harness: Any, nodes: tuple[str, ...]
) -> tuple[Callable[[], None], Callable[[], None]]:
    target = [fault.node or ""]  # resolved when the fault starts, for its stop too

    def resolve() -> str:
        if fault.leader:
            leader = getattr(harness, "leader", None)
            found = leader() if leader is not None else None
            target[0] = found if found is not None else target[0]
        return target[0]

    if fault.kind == "partition":
        if fault.leader:
            return (lambda: sim.partition(shapes.isolate(nodes, resolve()))), sim.heal
        grudge = {dst: frozenset(srcs) for dst, srcs in fault.grudge}
        return (lambda: sim.partition(grudge)), sim.heal
    if fault.kind == "kill":  # killing a dead node again is harmless: nothing is unsynced
        return (lambda: sim.kill(resolve())), (lambda: sim.restart(target[0]))
    if fault.kind == "pause":
        return (lambda: sim.pause(resolve())), (lambda: sim.resume(target[0]))
    if fault.kind == "clog":
        return (lambda: sim.clog(resolve())), (lambda: sim.unclog(target[0]))
    return (lambda: sim.set_clock_offset(target[0], fault.offset_ms)), (
        lambda: sim.set_clock_offset(target[0], 0)
    )


def run_seeds(
    seeds: range, *, system: str, harness_factory: SimHarnessFactory | None = None, jobs: int = 1
) -> Iterator[SimOutcome]:
    """Run the scenario of each seed (in ``jobs`` worker processes), yielding outcomes."""
    if jobs <= 1:
        factory = harness_factory or _factory(system)
        for seed in seeds:
            yield run_scenario(draw_scenario(seed), harness_factory=factory)
        return
    import multiprocessing

    ctx = multiprocessing.get_context("fork" if hasattr(__import__("os"), "fork") else "spawn")
    with ctx.Pool(jobs, initializer=_init_worker, initargs=(system,)) as pool:
        yield from pool.imap(_run_seed, seeds, chunksize=4)


_WORKER_FACTORY: SimHarnessFactory | None = None


def _factory(system: str) -> SimHarnessFactory:
    from rift_chaos.sim.scenario import find_harness_factory

    return find_harness_factory(system)


def _init_worker(system: str) -> None:
    global _WORKER_FACTORY  # noqa: PLW0603 - one per worker process
    _WORKER_FACTORY = _factory(system)


def _run_seed(seed: int) -> SimOutcome:
    assert _WORKER_FACTORY is not None
    return run_scenario(draw_scenario(seed), harness_factory=_WORKER_FACTORY)
