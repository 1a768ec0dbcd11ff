"""What ``chaos sim`` does: run many seeds with a progress bar, or replay one.

``chaos sim --seeds N [--start S]`` runs the scenarios of seeds S..S+N-1 in worker
processes, shows a progress bar with scenarios per second, prints each failure as
it comes with the line that replays it, then shrinks the first failures and prints
the replay line of each smaller scenario. ``chaos sim --seed S`` replays one
scenario with a readable trace of its messages and faults (``--keep-faults`` /
``--keep-ops`` replay a shrunk one). ``--check-determinism`` runs each scenario
twice and fails if the two trace hashes differ.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rift_chaos.errors import ChaosError
from rift_chaos.sim.runner import SimOutcome, replay_line, run_scenario, run_seeds
from rift_chaos.sim.scenario import Scenario, SimHarnessFactory, draw_scenario, find_harness_factory
from rift_chaos.sim.shrink import Shrunk, parse_indexes, restrict, shrink

__all__ = ["run_many", "replay", "shrink_and_report"]

EXIT_PASSED = 0
EXIT_FAILED = 1
SHRINK_AT_MOST = 3


def _line(seed: int, system: str, shrunk: Shrunk | None = None) -> str:
    line = replay_line(seed, system=system)
    return line if shrunk is None else f"{line} {shrunk.replay_args()}"


def run_many(
    *,
    start: int,
    count: int,
    system: str,
    jobs: int | None = None,
    do_shrink: bool = True,
    check_determinism: bool = False,
    console: Console | None = None,
) -> int:
    console = console or Console()
    factory = find_harness_factory(system)
    jobs = jobs if jobs is not None else min(os.cpu_count() or 1, 8)
    failures: list[SimOutcome] = []
    simulated_ms = 0
    began = time.perf_counter()
    columns = (
        TextColumn("[bold]chaos sim"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:.1f} scenarios/s"),
        TextColumn("{task.fields[failed]} failed"),
        TimeElapsedColumn(),
    )
    seeds = range(start, start + count)
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("sim", total=count, rate=0.0, failed=0)
        for outcome in run_seeds(seeds, system=system, jobs=jobs):
            simulated_ms += outcome.simulated_ms
            if check_determinism and outcome.passed:
                again = run_scenario(draw_scenario(outcome.seed), harness_factory=factory)
                if again.trace_hash != outcome.trace_hash:
                    outcome.passed = False
                    outcome.problems.append(
                        f"nondeterministic: trace hash {outcome.trace_hash[:12]} then "
                        f"{again.trace_hash[:12]}"
                    )
            if not outcome.passed:
                failures.append(outcome)
                progress.console.print(
                    f"[red]FAIL[/red] seed {outcome.seed}: {outcome.headline}\n"
                    f"     replay: [bold]{_line(outcome.seed, system)}[/bold]"
                )
            elapsed = max(time.perf_counter() - began, 1e-9)
            progress.update(
                task,
                advance=1,
                rate=(progress.tasks[0].completed + 1) / elapsed,
                failed=len(failures),
            )
    wall = max(time.perf_counter() - began, 1e-9)
    console.print(
        f"{count} scenarios in {wall:.1f}s: {count / wall:.1f} scenarios/s, "
        f"{simulated_ms / 1000 / wall:.0f} simulated s per wall s ({jobs} worker(s)); "
        f"{len(failures)} failed"
    )
    if do_shrink:
        for outcome in failures[:SHRINK_AT_MOST]:
            shrink_and_report(draw_scenario(outcome.seed), factory, system=system, console=console)
    return EXIT_FAILED if failures else EXIT_PASSED


def shrink_and_report(
    scenario: Scenario, factory: SimHarnessFactory, *, system: str, console: Console
) -> Shrunk:
    console.print(
        f"shrinking seed {scenario.seed} ({len(scenario.faults)} faults, "
        f"{len(scenario.ops)} ops) ..."
    )
    shrunk = shrink(scenario, lambda s: not run_scenario(s, harness_factory=factory).passed)
    outcome = run_scenario(shrunk.scenario, harness_factory=factory)
    console.print(
        f"  smallest failing: {len(shrunk.faults)} fault(s), {len(shrunk.ops)} op(s) after "
        f"{shrunk.runs} runs: {outcome.headline}\n"
        f"  replay: [bold]{_line(scenario.seed, system, shrunk)}[/bold]"
    )
    return shrunk


def replay(
    *,
    seed: int,
    system: str,
    keep_faults: str | None = None,
    keep_ops: str | None = None,
    show_trace: bool = True,
    do_shrink: bool = True,
    check_determinism: bool = False,
    console: Console | None = None,
) -> int:
    console = console or Console(highlight=False)
    factory = find_harness_factory(system)
    scenario = draw_scenario(seed)
    restricted = keep_faults is not None or keep_ops is not None
    if restricted:
        try:
            faults: Sequence[int] = (
                parse_indexes(keep_faults)
                if keep_faults is not None
                else range(len(scenario.faults))
            )
            ops: Sequence[int] = (
                parse_indexes(keep_ops) if keep_ops is not None else range(len(scenario.ops))
            )
            scenario = restrict(scenario, faults=faults, ops=ops)
        except ValueError as exc:
            raise ChaosError(str(exc)) from exc
    outcome = run_scenario(scenario, harness_factory=factory, trace=show_trace)
    for line in scenario.describe():
        console.print(line, markup=False)
    if show_trace:
        for line in outcome.trace:
            console.print(line, markup=False)
    verdict = "PASS" if outcome.passed else "FAIL"
    console.print(
        f"{verdict} seed {seed}: checker {outcome.verdict}, {outcome.steps} events, "
        f"{outcome.simulated_ms / 1000:.1f}s simulated in {outcome.wall_s:.2f}s, "
        f"trace hash {outcome.trace_hash}",
        markup=False,
    )
    for problem in outcome.problems:
        console.print(f"  {problem}", markup=False)
    failed = not outcome.passed
    if check_determinism:
        again = run_scenario(scenario, harness_factory=factory)
        same = again.trace_hash == outcome.trace_hash
        console.print(f"determinism: {'same' if same else 'DIFFERENT'} trace hash on a second run")
        failed = failed or not same
    if not outcome.passed and do_shrink and not restricted:
        shrink_and_report(scenario, factory, system=system, console=console)
    return EXIT_FAILED if failed else EXIT_PASSED
