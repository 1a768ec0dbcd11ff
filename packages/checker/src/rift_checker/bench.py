"""``python -m rift_checker.bench --ops N``: generate a valid history and time its check.

The history is generated in a child process, so this process's peak resident
memory (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) is the checker's own,
interpreter and imports included. Throughput is operations (invoke/completion
pairs) checked per second, by wall clock and by this process's CPU time; the
latter is the steadier figure on a busy machine. ``--history PATH`` checks an
existing file instead.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from rift_checker.check import check_history
from rift_checker.synth import generate_history

__all__ = ["main"]


def _maxrss_mib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def _generate(path: str, ops: int, seed: int, workers: int, partitions: int) -> None:
    generate_history(path, ops=ops, seed=seed, workers=workers, partitions=partitions)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rift_checker.bench", description=__doc__)
    p.add_argument("--ops", type=int, default=100_000, help="operations in the history")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=10, help="concurrent processes")
    p.add_argument("--partitions", type=int, default=8)
    p.add_argument("--keep", metavar="PATH", help="write the history here and keep it")
    p.add_argument("--history", metavar="PATH", help="check this history, generate nothing")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rift-bench-") as tmp:
        t0 = time.perf_counter()
        if args.history:
            path = Path(args.history)
        else:
            path = Path(args.keep) if args.keep else Path(tmp) / "history.jsonl"
            child = multiprocessing.get_context("spawn").Process(
                target=_generate,
                args=(str(path), args.ops, args.seed, args.workers, args.partitions),
            )
            child.start()
            child.join()
            if child.exitcode != 0:
                print(f"error: the generator failed (exit {child.exitcode})", file=sys.stderr)
                return 2
        t1 = time.perf_counter()
        rss_before = _maxrss_mib()
        cpu = time.process_time()
        result = check_history(path)
        cpu = time.process_time() - cpu
        elapsed = time.perf_counter() - t1
        size = path.stat().st_size
    n = result.statistics["ops"]
    print(f"ops             {n} ({result.statistics['events']} events)")
    print(f"history size    {size / 1e6:.1f} MB")
    if not args.history:
        print(f"generate        {t1 - t0:.2f} s")
    print(f"check           {elapsed:.2f} s wall, {cpu:.2f} s CPU")
    print(f"throughput      {n / elapsed:,.0f} ops/s wall, {n / cpu:,.0f} ops/s CPU")
    print(f"peak RSS        {_maxrss_mib():.0f} MiB (ru_maxrss; {rss_before:.0f} MiB before check)")
    print(f"verdict         {result.valid}")
    return 0 if result.valid is True else 1


if __name__ == "__main__":
    sys.exit(main())
