"""``broker bench``: drive a broker with many producers for a while and print figures.

    broker bench --start --seconds 10 --acks all
    broker bench --start --client confluent
    broker bench --start --processes 2
    broker bench --bootstrap-server 127.0.0.1:9092     # a broker you started

One run: create the topic, warm the producers up (connections, metadata, producer
ids), then produce for ``--seconds`` — ``--tasks`` concurrent producer tasks of our
asyncio client per process, or one confluent-kafka producer per process kept at
``--window`` outstanding records — with ``--processes`` worker processes (1: in
this process). Then, on the same disk, a plain ``write`` + ``fsync`` loop whose
blocks are the broker's mean bytes per group commit: the disk's own ceiling.

Figures: records/s and MB/s acknowledged, P50/P99/P99.9 produce latency (send to
delivery report), records appended by the broker, fsyncs (group commits) and mean
records per fsync, and the raw loop's fsyncs/s and MB/s. fsyncs are counted by the
broker itself, so they need ``--start`` (the broker then runs in a child process,
never in this one: sharing a GIL with the load generator would measure that);
against another broker, records appended come from ListOffsets and fsyncs are
"n/a". ``--profile FILE`` records the started broker with py-spy for the run.

Figures, never assertions: every loop ends at ``--seconds`` (plus the time to
collect what is in flight).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rift_broker.bench._broker_proc import BrokerProcess
from rift_broker.bench._load import ClientKind, LoadResult, LoadSpec, run_load, worker_main
from rift_broker.bench._raw import RawResult, raw_write_fsync
from rift_broker.errors import BrokerError, ConfigError

__all__ = ["BenchError", "add_bench_command", "run_bench"]


class BenchError(BrokerError):
    """The benchmark could not run; the message says why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Counters:
    records: int
    fsyncs: int | None  # None: the broker was not started by the bench
    log_bytes: int | None
    cpu_seconds: float | None


def add_bench_command(sub: Any) -> None:
    """Add ``bench`` to the ``broker`` command's subparsers."""
    bench = sub.add_parser(
        "bench",
        help="measure produce throughput, latency and fsyncs",
        description=(
            "Produce to a broker with many concurrent producers for --seconds and print "
            "records/s, MB/s, P50/P99/P99.9 produce latency, fsyncs and records per fsync, "
            "beside a raw write+fsync loop on the same disk. --start runs a broker in a "
            "child process on a temporary data directory (needed for the fsync counts)."
        ),
    )
    target = bench.add_mutually_exclusive_group()
    target.add_argument(
        "--start", action="store_true", help="start a broker for the run (temporary data dir)"
    )
    target.add_argument(
        "--bootstrap-server",
        default="127.0.0.1:9092",
        metavar="HOST:PORT",
        help="a running broker to drive (default 127.0.0.1:9092)",
    )
    bench.add_argument(
        "--data-dir",
        type=Path,
        help="--start: where to make the temporary data dir (default: the system temp dir);"
        " also where the raw write+fsync loop runs",
    )
    bench.add_argument(
        "--client",
        choices=("rift", "confluent"),
        default="rift",
        help="load generator: rift_client tasks (default) or confluent-kafka (librdkafka)",
    )
    bench.add_argument("--acks", choices=("1", "all"), default="all", help="default all")
    bench.add_argument("--seconds", type=float, default=10.0, help="how long to produce")
    bench.add_argument("--record-bytes", type=int, default=100, help="value size of a record")
    bench.add_argument("--processes", type=int, default=1, help="load-generator processes")
    bench.add_argument(
        "--tasks", type=int, default=500, help="rift: producer tasks per process (default 500)"
    )
    bench.add_argument(
        "--clients", type=int, default=4, help="rift: Producer instances the tasks share"
    )
    bench.add_argument(
        "--window",
        type=int,
        default=5000,
        help="confluent: outstanding records per process (default 5000)",
    )
    bench.add_argument("--linger-ms", type=float, default=5.0, help="producer linger")
    bench.add_argument("--topic", default="rift-bench", help="created if missing")
    bench.add_argument("--partitions", type=int, default=8, help="if the topic is created")
    bench.add_argument(
        "--raw-seconds", type=float, help="raw write+fsync loop (default: min(--seconds, 5))"
    )
    bench.add_argument(
        "--group-commit-max-wait-ms", type=float, help="--start: the broker's setting"
    )
    bench.add_argument("--group-commit-max-batch", type=int, help="--start: the broker's setting")
    bench.add_argument(
        "--durability",
        choices=("fsync", "none"),
        help="--start: the broker's setting (default fsync: acks=1 and all wait for the fsync)",
    )
    bench.add_argument(
        "--profile",
        type=Path,
        metavar="FILE",
        help="--start: py-spy record the broker during the run (raw folded stacks)",
    )
    bench.set_defaults(handler=run_bench)


def _check(args: argparse.Namespace) -> None:
    positive = {
        "--seconds": args.seconds,
        "--record-bytes": args.record_bytes,
        "--processes": args.processes,
        "--tasks": args.tasks,
        "--clients": args.clients,
        "--window": args.window,
        "--partitions": args.partitions,
    }
    for flag, value in positive.items():
        if not value > 0:
            raise ConfigError(f"{flag} must be positive, got {value}")
    if args.raw_seconds is not None and args.raw_seconds < 0:
        raise ConfigError("--raw-seconds must be >= 0")
    if args.linger_ms < 0:
        raise ConfigError("--linger-ms must be >= 0")
    if not args.start:
        for flag in ("profile", "durability", "group_commit_max_wait_ms", "group_commit_max_batch"):
            if getattr(args, flag) is not None:
                name = "--" + flag.replace("_", "-")
                raise ConfigError(f"{name} needs --start (it sets up the broker the bench starts)")
    args.clients = min(args.clients, args.tasks)


def run_bench(args: argparse.Namespace) -> int:
    """The ``broker bench`` handler: run, print, exit 0 (1 if nothing was acknowledged)."""
    _check(args)
    with ExitStack() as stack:
        broker: BrokerProcess | None = None
        if args.start:
            parent = str(args.data_dir) if args.data_dir is not None else None
            if parent is not None:
                os.makedirs(parent, exist_ok=True)
            scratch = tempfile.mkdtemp(prefix="rift-bench-", dir=parent)
            stack.callback(shutil.rmtree, scratch, ignore_errors=True)
            settings: dict[str, Any] = {}
            if args.group_commit_max_wait_ms is not None:
                settings["group_commit_max_wait_ms"] = args.group_commit_max_wait_ms
            if args.group_commit_max_batch is not None:
                settings["group_commit_max_batch"] = args.group_commit_max_batch
            if args.durability is not None:
                settings["durability"] = args.durability
            broker = stack.enter_context(
                BrokerProcess(data_dir=Path(scratch) / "broker", settings=settings)
            )
            bootstrap = broker.bootstrap
            raw_dir = scratch
        else:
            bootstrap = args.bootstrap_server
            raw_dir = tempfile.mkdtemp(prefix="rift-bench-raw-", dir=args.data_dir)
            stack.callback(shutil.rmtree, raw_dir, ignore_errors=True)
        return _run(args, bootstrap=bootstrap, broker=broker, raw_dir=raw_dir)
    raise AssertionError("unreachable")  # pragma: no cover


def _run(
    args: argparse.Namespace, *, bootstrap: str, broker: BrokerProcess | None, raw_dir: str
) -> int:
    partitions = asyncio.run(_ensure_topic(bootstrap, args.topic, args.partitions))
    client: ClientKind = args.client
    spec = LoadSpec(
        bootstrap=bootstrap,
        topic=args.topic,
        client=client,
        acks=args.acks,
        record_bytes=args.record_bytes,
        seconds=args.seconds,
        tasks=args.tasks,
        clients=args.clients,
        window=args.window,
        linger_ms=args.linger_ms,
    )

    def counters() -> _Counters:
        if broker is not None:
            stats = broker.stats(args.topic)
            return _Counters(
                records=stats.records,
                fsyncs=stats.fsyncs,
                log_bytes=stats.log_bytes,
                cpu_seconds=stats.cpu_seconds,
            )
        records = asyncio.run(_latest_offsets(bootstrap, args.topic, partitions))
        return _Counters(records=records, fsyncs=None, log_bytes=None, cpu_seconds=None)

    before: list[_Counters] = []
    profiler: list[subprocess.Popen[bytes]] = []

    def on_start() -> None:  # the load is about to start: take the "before" counters
        before.append(counters())
        if args.profile is not None and broker is not None:
            profiler.append(_start_profiler(broker.pid, args.profile, args.seconds))

    print(_heading(args, bootstrap, broker, partitions), flush=True)
    try:
        load = _drive(spec, args.processes, on_start)
    finally:
        for process in profiler:
            _finish_profiler(process, args.profile)
    after = counters()
    raw_seconds = min(args.seconds, 5.0) if args.raw_seconds is None else args.raw_seconds
    start = before[0]
    block = 16 * 1024  # log_bench's block, when the broker's own figure is unknown
    block_note = "no broker figure: log_bench's block"
    if after.fsyncs is not None and start.fsyncs is not None:
        fsyncs = after.fsyncs - start.fsyncs
        if fsyncs and after.log_bytes is not None and start.log_bytes is not None:
            block = max(512, (after.log_bytes - start.log_bytes) // fsyncs)
            block_note = "the broker's mean per fsync"
    raw = raw_write_fsync(raw_dir, block_bytes=block, seconds=raw_seconds) if raw_seconds else None
    report = _report(
        args, load=load, before=start, after=after, raw=raw, raw_where=f"{raw_dir}, {block_note}"
    )
    if broker is None:
        report += (
            "\n(the raw loop ran in --data-dir: the broker's disk only if you pointed it there)"
        )
    print(report, flush=True)
    if load.errors:
        print(f"first error: {load.first_error}", file=sys.stderr)
    return 0 if load.records else 1


def _drive(spec: LoadSpec, processes: int, on_start: Callable[[], None]) -> LoadResult:
    if processes == 1:
        return run_load(spec, ready=on_start)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes + 1)
    results: Any = context.Queue()
    workers = [
        context.Process(target=worker_main, args=(spec, barrier, results), daemon=True)
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    try:
        # Broken: a worker failed to set up; it reports its error like the others.
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=120)
        on_start()
        total = LoadResult()
        give_up = time.monotonic() + spec.seconds + 180
        for _ in workers:
            try:
                total.merge(results.get(timeout=max(give_up - time.monotonic(), 1)))
            except Exception:  # queue.Empty: a worker died without reporting
                total.errors += 1
                total.first_error = total.first_error or "a worker process did not report"
        return total
    finally:
        for worker in workers:
            worker.join(10)
            if worker.is_alive():
                worker.kill()
                worker.join()


async def _ensure_topic(bootstrap: str, topic: str, partitions: int) -> int:
    """Create the topic unless it exists; its number of partitions."""
    from rift_client import Admin, ClientError

    try:
        async with Admin(bootstrap, request_timeout_ms=10_000) as admin:
            existing = await admin.list_topics()
            if topic not in existing:
                await admin.create_topic(topic, partitions=partitions)
            info = await admin.wait_for_leaders(topic, timeout_ms=30_000)
            return len(info.partitions)
    except ClientError as e:
        raise BenchError(f"cannot set up topic {topic!r} on {bootstrap}: {e}") from None


async def _latest_offsets(bootstrap: str, topic: str, partitions: int) -> int:
    from rift_client import Admin, ClientError, TopicPartition

    try:
        async with Admin(bootstrap, request_timeout_ms=10_000) as admin:
            offsets = await admin.list_offsets(
                [TopicPartition(topic=topic, partition=p) for p in range(partitions)]
            )
            return sum(offsets.values())
    except ClientError as e:
        raise BenchError(f"cannot read the offsets of {topic!r} on {bootstrap}: {e}") from None


def _start_profiler(pid: int, out: Path, seconds: float) -> subprocess.Popen[bytes]:
    candidates = [str(Path(sys.executable).parent / "py-spy"), shutil.which("py-spy")]
    found = next((c for c in candidates if c and os.path.exists(c)), None)
    if found is None:
        raise BenchError("--profile needs py-spy (pip install py-spy)")
    command = [found, "record", "-p", str(pid), "-d", str(math.ceil(seconds))]
    return subprocess.Popen(
        [*command, "-f", "raw", "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _finish_profiler(process: subprocess.Popen[bytes], out: Path | None) -> None:
    try:
        _, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
    if process.returncode != 0:
        message = stderr.decode(errors="replace").strip().splitlines()
        print(f"py-spy failed: {message[-1] if message else process.returncode}", file=sys.stderr)
    else:
        print(f"profile of the broker: {out} (py-spy raw folded stacks)", file=sys.stderr)


# -- printing ------------------------------------------------------------------------


def _heading(
    args: argparse.Namespace, bootstrap: str, broker: BrokerProcess | None, partitions: int
) -> str:
    if args.client == "rift":
        per = f"{args.tasks} rift_client tasks over {args.clients} producers"
    else:
        per = f"1 confluent-kafka producer, {args.window} records outstanding"
    where = f"started by the bench, pid {broker.pid}" if broker is not None else "already running"
    return (
        f"broker bench: {args.processes} process(es) x {per}; acks={args.acks}, "
        f"{args.record_bytes}-byte records, linger {args.linger_ms:g} ms, {args.seconds:g} s\n"
        f"broker {bootstrap} ({where}); topic {args.topic}, {partitions} partitions"
    )


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def _report(
    args: argparse.Namespace,
    *,
    load: LoadResult,
    before: _Counters,
    after: _Counters,
    raw: RawResult | None,
    raw_where: str,
) -> str:
    elapsed = max(load.seconds, 1e-9)
    rate = load.records / elapsed
    lines = [
        "load generator",
        f"  records/s          {rate:,.0f}",
        f"  MB/s               {rate * args.record_bytes / 1e6:.2f}  (record values)",
        f"  latency p50        {_ms(load.latency.percentile(50))}",
        f"  latency p99        {_ms(load.latency.percentile(99))}",
        f"  latency p99.9      {_ms(load.latency.percentile(99.9))}",
        f"  acknowledged       {load.records:,} records in {elapsed:.2f} s, {load.errors} errors",
        f"  CPU                {load.cpu_seconds / elapsed:.2f} cores",
        "broker",
        f"  records appended   {after.records - before.records:,}",
    ]
    fsyncs_per_s = 0.0
    if after.fsyncs is None or before.fsyncs is None:
        lines.append("  fsyncs             n/a (counted only with --start)")
        lines.append("  records/fsync      n/a")
    else:
        fsyncs = after.fsyncs - before.fsyncs
        fsyncs_per_s = fsyncs / elapsed
        records = after.records - before.records
        per = f"{records / fsyncs:,.1f}" if fsyncs else "n/a (no fsyncs: --durability none?)"
        lines.append(f"  fsyncs             {fsyncs:,}  ({fsyncs_per_s:,.0f}/s, group commits)")
        lines.append(f"  records/fsync      {per}")
        if after.log_bytes is not None and before.log_bytes is not None:
            log_mb = (after.log_bytes - before.log_bytes) / elapsed / 1e6
            lines.append(f"  log MB/s           {log_mb:.2f}  (record batches as stored)")
    if after.cpu_seconds is not None and before.cpu_seconds is not None:
        cores = (after.cpu_seconds - before.cpu_seconds) / elapsed
        lines.append(f"  CPU                {cores:.2f} cores (every thread of the broker process)")
    if raw is None:
        lines.append("raw write+fsync      skipped (--raw-seconds 0)")
    else:
        lines += [
            f"raw write+fsync on the same disk, {raw.seconds:.1f} s of "
            f"{raw.block_bytes:,}-byte blocks ({raw_where})",
            f"  fsyncs/s           {raw.fsyncs_per_s:,.0f}",
            f"  MB/s               {raw.mb_per_s:.2f}",
            f"  fsync p50 / p99    {_ms(raw.latency.percentile(50))} / "
            f"{_ms(raw.latency.percentile(99))}",
        ]
        if fsyncs_per_s and raw.fsyncs_per_s:
            lines.append(
                f"  broker/raw fsyncs  {fsyncs_per_s / raw.fsyncs_per_s:.2f}"
                "  (near 1: the disk's fsync rate is the limit; partitions fsync in parallel)"
            )
    load_1m, _, _ = os.getloadavg()
    lines.append(
        f"machine: {os.cpu_count()} CPUs, load average {load_1m:.1f} at the end"
        " (anything else running shares the CPUs with the broker and the load generator)"
    )
    return "\n".join(lines)
