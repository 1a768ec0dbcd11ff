"""``python -m rift_checker.bench``: how fast a valid history is checked, and in how much memory.

For each size (default 10^4, 10^5 and 10^6 operations) it writes a valid history
with :func:`~rift_checker.synth.generate_history` and checks it ``--repeat`` times,
each check in a fresh child process, so that the child's peak resident memory
(``ru_maxrss``) is the checker's own, interpreter and imports included (the
baseline, before the check, is shown too). Throughput is operations
(invoke/completion pairs) checked per second of the child's CPU time, the steadier
figure on a busy machine, and of wall-clock time; the median over the repetitions
is shown, and the best run (the one other work on the machine disturbed least). Each
round also times reading and decoding the history alone (msgspec, as the check does),
the floor of any check in Python: the ratio of the two, taken within each round, is
the figure that other work on the machine disturbs least. The check runs with the
native core where it is built (``rift_checker/_native.c``); ``--compare-python``
also checks each history with it off, in the same round, and shows the speedup. The
repetitions go round the sizes (every history once, then again), so that a busy
spell slows all sizes alike instead of the one that happened to be running. The last
lines give how time and memory grow with size: the ratio between sizes and the
exponent ``k`` of ``growth = (size ratio) ** k`` (1 is linear).

``--history PATH ...`` checks existing files instead of generating histories.
"""

from __future__ import annotations

import argparse
import itertools
import math
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

__all__ = ["main"]

_SIZES = (10_000, 100_000, 1_000_000)
#: The throughput the checker is held to (operations per second of CPU time).
_BAR_OPS_PER_S = 200_000


def _maxrss_mib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def _generate(path: str, ops: int, seed: int, workers: int, partitions: int) -> None:
    from rift_checker.synth import generate_history

    generate_history(path, ops=ops, seed=seed, workers=workers, partitions=partitions)


def _check(path: str, native: bool, out: Connection) -> None:
    """Child process: check one history and send back what it cost."""
    from rift_checker import _analyzer
    from rift_checker.check import check_history

    _analyzer.NATIVE = native

    before = _maxrss_mib()
    wall = time.perf_counter()
    cpu = time.process_time()
    result = check_history(path)
    cpu = time.process_time() - cpu
    wall = time.perf_counter() - wall
    stats = result.statistics
    out.send(
        {
            "ops": stats["ops"],
            "events": stats["events"],
            "cpu": cpu,
            "wall": wall,
            "rss": _maxrss_mib(),
            "rss_before": before,
            "valid": result.valid,
        }
    )
    out.close()


def _decode_only(path: str, out: Connection) -> None:
    """Child process: only read and decode the history, as the check does (its floor)."""
    from rift_checker.reader import HistoryReader

    cpu = time.process_time()
    with HistoryReader(path) as reader:
        for _ in reader.line_batches(model=True):
            pass
    out.send({"cpu": time.process_time() - cpu})
    out.close()


def _in_child(target: Any, *args: Any) -> Any:
    """Run ``target(*args, conn)`` in a fresh interpreter; return what it sends back."""
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=target, args=(*args, send))
    child.start()
    send.close()
    try:
        reply = receive.recv()
    except EOFError:
        reply = None
    child.join()
    if child.exitcode != 0 or reply is None:
        raise RuntimeError(f"the child process failed (exit {child.exitcode})")
    return reply


def _run_generate(path: str, ops: int, seed: int, workers: int, partitions: int) -> None:
    ctx = multiprocessing.get_context("spawn")
    child = ctx.Process(target=_generate, args=(path, ops, seed, workers, partitions))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise RuntimeError(f"the generator failed (exit {child.exitcode})")


@dataclass(frozen=True, slots=True, kw_only=True)
class Measure:
    """The median figures of the checks of one history (and its best CPU time)."""

    ops: int
    events: int
    size_mb: float
    cpu: float
    cpu_best: float
    decode: float  # CPU time of reading and decoding alone (median)
    over_decode: float  # check CPU time / decode CPU time, median of the rounds
    python: float | None  # CPU time of the pure-Python pass (median), if measured
    speedup: float | None  # pure-Python CPU time / check CPU time, median of the rounds
    wall: float
    rss: float
    rss_before: float
    valid: Any
    runs: int

    @property
    def ops_per_cpu_s(self) -> float:
        return self.ops / self.cpu if self.cpu > 0 else math.inf

    @property
    def ops_per_best_cpu_s(self) -> float:
        return self.ops / self.cpu_best if self.cpu_best > 0 else math.inf

    @property
    def ops_per_wall_s(self) -> float:
        return self.ops / self.wall if self.wall > 0 else math.inf


def _measure(path: Path, runs: list[dict[str, Any]]) -> Measure:
    first = runs[0]
    return Measure(
        ops=first["ops"],
        events=first["events"],
        size_mb=path.stat().st_size / 1e6,
        cpu=statistics.median(r["cpu"] for r in runs),
        cpu_best=min(r["cpu"] for r in runs),
        decode=statistics.median(r["decode"] for r in runs),
        over_decode=statistics.median(r["cpu"] / max(r["decode"], 1e-9) for r in runs),
        python=statistics.median(r["python"] for r in runs) if "python" in first else None,
        speedup=(
            statistics.median(r["python"] / max(r["cpu"], 1e-9) for r in runs)
            if "python" in first
            else None
        ),
        wall=statistics.median(r["wall"] for r in runs),
        rss=statistics.median(r["rss"] for r in runs),
        rss_before=statistics.median(r["rss_before"] for r in runs),
        valid=first["valid"],
        runs=len(runs),
    )


def _exponent(a: float, b: float, n_a: int, n_b: int) -> str:
    if a <= 0 or b <= 0 or n_a <= 0 or n_b <= 0 or n_a == n_b:
        return "-"
    return f"{math.log(b / a) / math.log(n_b / n_a):.2f}"


def _table(rows: list[Measure]) -> str:
    python = any(m.python is not None for m in rows)
    head = (
        f"{'ops':>10} {'events':>10} {'MB':>7} {'runs':>4} {'CPU s':>7} {'best s':>7} "
        f"{'decode s':>8} {'/decode':>7} "
        + (f"{'Python s':>8} {'speedup':>7} " if python else "")
        + f"{'wall s':>7} {'ops/s CPU':>10} {'ops/s best':>10} {'ops/s wall':>10} "
        f"{'peak RSS':>9} {'baseline':>9} {'verdict':>8}"
    )
    lines = [head, "-" * len(head)]
    for m in rows:
        lines.append(
            f"{m.ops:>10,} {m.events:>10,} {m.size_mb:>7.1f} {m.runs:>4} {m.cpu:>7.2f} "
            f"{m.cpu_best:>7.2f} {m.decode:>8.2f} {m.over_decode:>6.2f}x "
            + (f"{m.python or 0:>8.2f} {m.speedup or 0:>6.2f}x " if python else "")
            + f"{m.wall:>7.2f} {m.ops_per_cpu_s:>10,.0f} "
            f"{m.ops_per_best_cpu_s:>10,.0f} {m.ops_per_wall_s:>10,.0f} "
            f"{m.rss:>5.0f} MiB {m.rss_before:>5.0f} MiB {m.valid!s:>8}"
        )
    if len(rows) > 1:
        lines.append("")
        lines.append(
            "growth (k: growth = size ratio ** k; 1 is linear; CPU time of the median run, and"
            " of the best run; memory is peak minus baseline)"
        )
        pairs = list(itertools.pairwise(rows))
        if len(rows) > 2:
            pairs.append((rows[0], rows[-1]))
        for a, b in pairs:
            ratio = b.ops / a.ops if a.ops else math.inf
            t = b.cpu / a.cpu if a.cpu > 0 else math.inf
            mem_a = max(a.rss - a.rss_before, 1e-9)
            mem_b = max(b.rss - b.rss_before, 1e-9)
            lines.append(
                f"  {a.ops:>9,} -> {b.ops:>9,}: size x{ratio:.1f}, CPU time x{t:.1f} "
                f"(k={_exponent(a.cpu, b.cpu, a.ops, b.ops)}; best "
                f"k={_exponent(a.cpu_best, b.cpu_best, a.ops, b.ops)}), ops/s CPU "
                f"x{b.ops_per_cpu_s / a.ops_per_cpu_s:.2f}, memory x{mem_b / mem_a:.1f} "
                f"(k={_exponent(mem_a, mem_b, a.ops, b.ops)})"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m rift_checker.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--ops",
        type=int,
        nargs="+",
        default=list(_SIZES),
        metavar="N",
        help="operations per history (default: 10000 100000 1000000)",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="rounds: checks per history, going round the sizes (median and best shown)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=10, help="concurrent processes")
    p.add_argument("--partitions", type=int, default=8)
    p.add_argument("--keep", metavar="DIR", help="write the histories into DIR and keep them")
    p.add_argument(
        "--history", metavar="PATH", nargs="+", help="check these histories, generate nothing"
    )
    p.add_argument(
        "--compare-python",
        action="store_true",
        help="each round also checks with the native core off (the pure-Python pass) and "
        "shows the speedup, taken within each round",
    )
    args = p.parse_args(argv)
    if args.repeat < 1 or any(n < 1 for n in args.ops):
        p.error("--ops and --repeat must be >= 1")
    load = os.getloadavg()  # other work on the machine slows the figures down
    from rift_checker import _analyzer

    if _analyzer._native_run is None:
        print("native core: not built (pure-Python pass; see rift_checker/_native.c)")
        if args.compare_python:
            p.error("--compare-python needs the native core, which is not built here")
    else:
        print("native core: on")
    with tempfile.TemporaryDirectory(prefix="rift-bench-") as tmp:
        if args.history:
            paths = [Path(h) for h in args.history]
        else:
            where = Path(args.keep) if args.keep else Path(tmp)
            where.mkdir(parents=True, exist_ok=True)
            paths = []
            for n in args.ops:
                path = where / f"history-{n}.jsonl"
                t0 = time.perf_counter()
                _run_generate(str(path), n, args.seed, args.workers, args.partitions)
                print(f"generated {n:,} ops in {time.perf_counter() - t0:.1f} s: {path}")
                paths.append(path)
        runs: list[list[dict[str, Any]]] = [[] for _ in paths]
        for round_ in range(1, args.repeat + 1):
            for path, done in zip(paths, runs, strict=True):
                run = _in_child(_check, str(path), True)
                run["decode"] = _in_child(_decode_only, str(path))["cpu"]
                python = ""
                if args.compare_python:
                    run["python"] = _in_child(_check, str(path), False)["cpu"]
                    python = f"; pure Python {run['python']:.2f} s"
                done.append(run)
                print(
                    f"round {round_}/{args.repeat}: checked {run['ops']:,} ops in "
                    f"{run['cpu']:.2f} s CPU ({run['ops'] / max(run['cpu'], 1e-9):,.0f} ops/s; "
                    f"decoding alone {run['decode']:.2f} s{python}), "
                    f"peak RSS {run['rss']:.0f} MiB",
                    flush=True,
                )
        rows = [_measure(path, done) for path, done in zip(paths, runs, strict=True)]
    print()
    print(_table(rows))
    big = max(rows, key=lambda m: m.ops)
    print()
    print(
        f"largest history: {big.ops:,} ops at {big.ops_per_cpu_s:,.0f} ops/s CPU (median run; "
        f"best {big.ops_per_best_cpu_s:,.0f}; bar: over {_BAR_OPS_PER_S:,}), "
        f"peak RSS {big.rss:.0f} MiB (bar: well under 2 GiB)"
    )
    print(f"load average before/after: {load[0]:.2f} / {os.getloadavg()[0]:.2f} (CPUs: {_cpus()})")
    return 0 if all(m.valid is True for m in rows) else 1


def _cpus() -> int:
    return os.cpu_count() or 1


if __name__ == "__main__":
    sys.exit(main())
