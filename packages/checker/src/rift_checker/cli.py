"""``rift-check PATH``: check a history file or run directory (re-exported as ``chaos check``).

Exit status: 0 valid, 1 invalid, 2 unknown or error. A bad file or argument gives
a one-line error on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from rift_checker.check import check_history
from rift_checker.config import CHECKS, CheckConfig
from rift_checker.errors import CheckerError
from rift_checker.reader import fetch_ops
from rift_checker.render import print_result, shown_op_ids
from rift_checker.results import Result

__all__ = ["main", "build_parser", "EXIT_VALID", "EXIT_INVALID", "EXIT_UNKNOWN"]

EXIT_VALID = 0
EXIT_INVALID = 1
EXIT_UNKNOWN = 2  # also any error
#: Histories from this size on (about 60,000 operations) are checked with a progress bar.
PROGRESS_FROM_BYTES = 16 << 20


def _names(text: str) -> frozenset[str]:
    return frozenset(n.strip() for n in text.split(",") if n.strip())


def build_parser(prog: str = "rift-check") -> argparse.ArgumentParser:
    """The argument parser; the toolkit reuses it for ``chaos check``."""
    p = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Check a history of operations against a log (see HISTORY.md) and print the "
            "verdict with the operations that prove each anomaly. PATH is a history.jsonl "
            "file or a run directory containing one. Writes results.json next to the history."
        ),
        epilog=(
            "checks: " + ", ".join(CHECKS) + ".  "
            "Exit status: 0 valid, 1 invalid, 2 unknown (e.g. no final read) or error."
        ),
    )
    p.add_argument("path", metavar="PATH", help="history.jsonl or a run directory")
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="where to write results.json (default: next to the history; '-' for none)",
    )
    p.add_argument(
        "--checks", metavar="A,B", type=_names, help="only these checks (comma-separated)"
    )
    p.add_argument(
        "--tolerate",
        metavar="A,B",
        type=_names,
        default=frozenset(),
        help="report these anomalies without failing the verdict, e.g. duplicate,poll-skip",
    )
    p.add_argument(
        "--cases", metavar="N", type=int, default=3, help="cases shown per check (default 3)"
    )
    p.add_argument(
        "--max-cases", metavar="N", type=int, default=100, help="cases kept per check (100)"
    )
    p.add_argument(
        "--ops",
        action="store_true",
        help="also print each shown case's operations in full (re-reads the history)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print only the verdict line")
    return p


def _history_path(path: Path) -> Path:
    if path.is_dir():
        candidate = path / "history.jsonl"
        if not candidate.is_file():
            raise CheckerError(f"{path} is a directory without a history.jsonl")
        return candidate
    if not path.exists():
        raise CheckerError(f"{path} does not exist")
    return path


def _check_with_progress(history: Path, config: CheckConfig, *, show: bool) -> Result:
    """check_history, with a progress bar on stderr for a file big enough to wait for."""
    size = history.stat().st_size
    if not show or size < PROGRESS_FROM_BYTES:
        return check_history(history, config=config)
    with Progress(
        TextColumn("checking {task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task(history.name, total=size)
        return check_history(history, config=config, on_read=lambda n: progress.advance(task, n))


def main(argv: Sequence[str] | None = None, *, prog: str = "rift-check") -> int:
    """Run the CLI; return the exit status."""
    args = build_parser(prog).parse_args(argv)
    err = Console(stderr=True)
    try:
        history = _history_path(Path(args.path))
        config = CheckConfig(
            checks=args.checks if args.checks is not None else frozenset(CHECKS),
            tolerate=args.tolerate,
            max_cases=args.max_cases,
        )
        result = _check_with_progress(history, config, show=not args.quiet and err.is_terminal)
        if args.output != "-":
            out = Path(args.output) if args.output else history.with_name("results.json")
            try:
                result.write_json(out)
            except OSError as e:
                raise CheckerError(f"cannot write {out}: {e.strerror}") from None
    except CheckerError as e:
        err.print(f"[bold red]error:[/] {e}", markup=True, highlight=False, soft_wrap=True)
        return EXIT_UNKNOWN
    if args.quiet:
        verdict = "unknown" if result.valid == "unknown" else "valid" if result.valid else "invalid"
        print(f"{verdict}: {result.anomalies or 'no anomalies'}")
    else:
        ops = None
        if args.ops:
            try:
                ops = fetch_ops(history, shown_op_ids(result, cases_per_check=args.cases))
            except CheckerError as e:
                err.print(f"[bold red]error:[/] {e}", markup=True, highlight=False, soft_wrap=True)
                return EXIT_UNKNOWN
        print_result(result, cases_per_check=args.cases, ops=ops)
    if result.valid is True:
        return EXIT_VALID
    return EXIT_INVALID if result.valid is False else EXIT_UNKNOWN


if __name__ == "__main__":
    sys.exit(main())
