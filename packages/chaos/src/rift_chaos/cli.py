"""The ``chaos`` command line.

``chaos run WORKLOAD`` runs a workload, ``chaos check RUN`` checks a stored run,
``chaos heal`` removes what a crashed run left behind, ``chaos sim`` runs seeded
scenarios in the deterministic simulator (see :mod:`rift_chaos.sim.command`).
Exit status: 0 valid (or done), 1 invalid, 2 unknown or error. Errors are one line
on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rift_chaos.errors import ChaosError
from rift_chaos.remote import BACKENDS
from rift_chaos.remote.heal import HealReport, heal
from rift_chaos.workload import load_workload

__all__ = ["main"]

EXIT_VALID = 0
EXIT_INVALID = 1
EXIT_UNKNOWN = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chaos",
        description="Jepsen-style testing of distributed logs: real nodes, real faults, "
        "a history and a verdict.",
        epilog="Exit status: 0 valid, 1 invalid, 2 unknown or error.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser(
        "run",
        help="run a workload and check its history",
        description="Set up the nodes and the system, run clients and nemesis for the time "
        "limit, heal, read everything back, tear down, check, and store the run under "
        "results/<workload>/<timestamp>/.",
    )
    run.add_argument(
        "workload", type=Path, help="a workload YAML file, e.g. workloads/partition.yaml"
    )
    run.add_argument("--seed", type=int, help="seed of the schedule (repeats a run's faults)")
    run.add_argument("--time-limit", type=float, metavar="SECONDS", help="override time_limit")
    run.add_argument("--nodes", type=int, help="override the node count")
    run.add_argument("--backend", choices=BACKENDS, help="override the backend")
    run.add_argument(
        "--results", type=Path, default=Path("results"), help="where runs are stored (results/)"
    )

    check = commands.add_parser(
        "check",
        help="check a stored run or a history file again",
        description="Run the checker on results/<workload>/<timestamp>/ or a history.jsonl "
        "and print the verdict.",
    )
    check.add_argument("run", type=Path, help="a run directory or a history.jsonl file")

    heal_cmd = commands.add_parser(
        "heal",
        help="remove what a crashed run left behind",
        description="Kill the processes and delete the network namespaces and links of a run "
        "(partition rules live inside its namespaces and go with them). Idempotent. "
        "Needs root for the netns backend.",
    )
    which = heal_cmd.add_mutually_exclusive_group(required=True)
    which.add_argument("--run-id", help="the run id (shown when the run starts)")
    which.add_argument(
        "--all", action="store_true", help="every run on this machine (none may be in progress)"
    )
    _add_sim(commands)
    return parser


def _add_sim(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sim = commands.add_parser(
        "sim",
        help="run seeded scenarios in the deterministic simulator",
        description="Run the system's own logic in virtual time under seeded faults. "
        "`--seeds N` runs N scenarios (failures print the line that replays them, then "
        "shrink); `--seed S` replays one with a readable trace.",
    )
    which = sim.add_mutually_exclusive_group(required=True)
    which.add_argument("--seeds", type=int, metavar="N", help="run N scenarios")
    which.add_argument("--seed", type=int, metavar="S", help="replay the scenario of seed S")
    sim.add_argument("--start", type=int, default=0, help="first seed of --seeds (0)")
    sim.add_argument("--system", default="rift-broker", help="the system (rift-broker)")
    sim.add_argument("--jobs", type=int, help="worker processes (default: one per CPU)")
    sim.add_argument("--keep-faults", metavar="I,J-K", help="replay only these faults")
    sim.add_argument("--keep-ops", metavar="I,J-K", help="replay only these client ops")
    sim.add_argument("--no-trace", action="store_true", help="--seed: do not print the trace")
    sim.add_argument("--no-shrink", action="store_true", help="do not shrink failures")
    sim.add_argument(
        "--check-determinism", action="store_true", help="run each scenario twice, compare hashes"
    )


def _sim(args: argparse.Namespace) -> int:
    from rift_chaos.sim import command

    if args.seed is not None:
        return command.replay(
            seed=args.seed,
            system=args.system,
            keep_faults=args.keep_faults,
            keep_ops=args.keep_ops,
            show_trace=not args.no_trace,
            do_shrink=not args.no_shrink,
            check_determinism=args.check_determinism,
        )
    if args.seeds < 1:
        raise ChaosError("--seeds must be at least 1")
    return command.run_many(
        start=args.start,
        count=args.seeds,
        system=args.system,
        jobs=args.jobs,
        do_shrink=not args.no_shrink,
        check_determinism=args.check_determinism,
    )


def _describe(report: HealReport, label: str) -> str:
    if report.empty:
        return f"nothing to heal for {label}"
    return (
        f"healed {label}: killed {len(report.processes)} process(es), removed "
        f"{len(report.namespaces)} namespace(s) and {len(report.links)} link(s)"
    )


def _run(args: argparse.Namespace) -> int:
    from rift_chaos.runner import Runner

    workload = load_workload(args.workload).with_overrides(
        time_limit=args.time_limit, nodes=args.nodes, seed=args.seed, backend=args.backend
    )
    outcome = Runner(workload, results=args.results).run()
    return outcome.exit_code


def _check(args: argparse.Namespace) -> int:
    from rich.console import Console

    from rift_checker import CheckerError, check_history, render

    path: Path = args.run
    history = path / "history.jsonl" if path.is_dir() else path
    if not history.is_file():
        raise ChaosError(f"{path}: no history.jsonl there (give a run directory or a history file)")
    try:
        result = check_history(history)
    except (CheckerError, OSError) as exc:
        raise ChaosError(f"{history}: {exc}") from exc
    result.write_json(history.with_name("results.json"))
    Console().print(render(result))
    if result.valid is True:
        return EXIT_VALID
    return EXIT_INVALID if result.valid is False else EXIT_UNKNOWN


def _heal(args: argparse.Namespace) -> int:
    run_id = None if args.all else args.run_id
    try:
        report = heal(run_id)
    except ValueError as exc:
        raise ChaosError(str(exc)) from exc
    print(_describe(report, "every run" if run_id is None else f"run {run_id}"))
    return EXIT_VALID


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handlers = {"run": _run, "check": _check, "heal": _heal, "sim": _sim}
    try:
        return handlers[args.command](args)
    except ChaosError as exc:
        print(f"chaos: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(
            "chaos: interrupted; run `chaos heal --run-id ID` if nodes were left", file=sys.stderr
        )
        return EXIT_UNKNOWN


if __name__ == "__main__":
    sys.exit(main())
