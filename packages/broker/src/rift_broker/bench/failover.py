"""Failover time and acks=all throughput of a local cluster (figures, not assertions).

    python -m rift_broker.bench.failover --trials 20 --seconds 10

Failover: a 3-node :class:`~rift_broker.cluster.dev.LocalCluster`, a topic with
replication factor 3 and min.insync.replicas=2, one idempotent acks=all producer
sending one record at a time. Each trial SIGKILLs the partition's leader and times
*leader killed -> acknowledgement of the first write sent after the kill*
(necessarily by the new leader: the old one is dead), then restarts the killed
node and waits until it is back in the ISR before the next trial. Median and max
over the trials.

Throughput: the same producer settings, ``--seconds`` of ``send_many`` in chunks of
``--chunk`` records of ``--record-bytes``, against the 3-node cluster (RF 3,
min.insync.replicas=2) and against a single ``broker serve`` (RF 1), one after the
other in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rift_broker.cluster.dev import HOST, LocalCluster, free_ports, log_tail
from rift_client import PartitionInfo, sync

TOPIC = "bench"

# One producer configuration for every measurement.
PRODUCER: dict[str, Any] = {
    "acks": "all",
    "idempotent": True,
    "linger_ms": 5,
    "max_batch_bytes": 16384,
    "request_timeout_ms": 5000,
    "delivery_timeout_ms": 60_000,
    "retry_backoff_ms": 50,
    "retry_backoff_max_ms": 250,
}


def _wait(what: str, cond: Callable[[], Any], *, within_s: float = 60.0) -> Any:
    deadline = time.monotonic() + within_s
    while True:
        try:
            value = cond()
        except Exception:  # starting or failing over: ask again
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"failover bench: timed out waiting for {what}")
        time.sleep(0.05)


def _describe(bootstrap: str) -> PartitionInfo:
    with sync.Admin(bootstrap, request_timeout_ms=2000) as admin:
        info: PartitionInfo = admin.describe_topics([TOPIC])[TOPIC].partitions[0]
    return info


def _create(bootstrap: str, *, replication_factor: int, min_isr: int) -> None:
    with sync.Admin(bootstrap, request_timeout_ms=10_000) as admin:
        admin.create_topic(
            TOPIC,
            partitions=1,
            replication_factor=replication_factor,
            configs={"min.insync.replicas": str(min_isr)},
        )
        admin.wait_for_leaders(TOPIC, timeout_ms=30_000)


class _Sender(threading.Thread):
    """Sends one record at a time; remembers when each acknowledgement came."""

    def __init__(self, bootstrap: str) -> None:
        super().__init__(daemon=True)
        self.producer = sync.Producer(bootstrap, **PRODUCER)
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.acks: list[tuple[float, float]] = []  # (sent, acknowledged), monotonic
        self.failures = 0

    def run(self) -> None:
        n = 0
        try:
            while not self.stopping.is_set():
                sent = time.monotonic()
                report = self.producer.send(TOPIC, b"f%d" % n)
                n += 1
                now = time.monotonic()
                with self.lock:
                    if report.ok:
                        self.acks.append((sent, now))
                    else:
                        self.failures += 1
        finally:
            self.producer.close()

    def first_ack_after(self, t: float) -> float | None:
        """When the first record *sent* after ``t`` was acknowledged.

        Counting from the send, not the ack, keeps out an answer the old leader
        wrote just before it died; a record in flight at ``t`` that the new leader
        acknowledges counts one send later (a few ms more, never less)."""
        with self.lock:
            later = [acked for sent, acked in self.acks[-50:] if sent > t]
        return later[0] if later else None


@dataclass(frozen=True, slots=True)
class Trial:
    killed: int
    new_leader: int
    epochs: tuple[int, int]
    seconds: float


def _acked_after(sender: _Sender, t: float) -> Callable[[], float | None]:
    return lambda: sender.first_ack_after(t)


def _new_leader(bootstrap: str, old: int) -> Callable[[], PartitionInfo | None]:
    def check() -> PartitionInfo | None:
        p = _describe(bootstrap)
        return p if p.leader not in (-1, old) else None

    return check


def _reachable(bootstrap: str) -> bool:
    with sync.Admin(bootstrap, request_timeout_ms=2000) as admin:
        admin.list_topics()
    return True


def measure_failover(cluster: LocalCluster, trials: int) -> list[Trial]:
    _create(cluster.bootstrap, replication_factor=3, min_isr=2)
    sender = _Sender(cluster.bootstrap)
    sender.start()
    results: list[Trial] = []
    try:
        for i in range(trials):
            before = _wait(
                "a full ISR",
                lambda: (p := _describe(cluster.bootstrap)).leader > 0 and len(p.isr) == 3 and p,
            )
            _wait("writes", lambda: sender.first_ack_after(time.monotonic() - 0.5))
            killed_at = time.monotonic()
            cluster.kill(before.leader)
            acked_at = _wait("an acknowledged write", _acked_after(sender, killed_at))
            alive = ",".join(n.bootstrap for k, n in cluster.nodes.items() if k != before.leader)
            after = _wait("the new leader", _new_leader(alive, before.leader))
            trial = Trial(
                killed=before.leader,
                new_leader=after.leader,
                epochs=(before.epoch, after.epoch),
                seconds=acked_at - killed_at,
            )
            results.append(trial)
            print(
                f"  trial {i + 1:2d}: killed node {trial.killed} (epoch {before.epoch}) -> "
                f"node {trial.new_leader} (epoch {after.epoch}): {trial.seconds * 1000:7.1f} ms",
                flush=True,
            )
            cluster.restart(before.leader)
    finally:
        sender.stopping.set()
        sender.join(timeout=30)
    return results


def measure_throughput(bootstrap: str, *, seconds: float, chunk: int, record_bytes: int) -> float:
    """Acknowledged records per second over ``seconds``."""
    value = b"x" * record_bytes
    records = [(None, value)] * chunk
    acked = failed = 0
    with sync.Producer(bootstrap, **PRODUCER) as producer:
        producer.send_many(TOPIC, records[:10])  # connect, InitProducerId, metadata
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            for report in producer.send_many(TOPIC, records):
                if report.ok:
                    acked += 1
                else:
                    failed += 1
        elapsed = time.monotonic() - start
    if failed:
        print(f"  ({failed} records not acknowledged)")
    return acked / elapsed


def _single_node(directory: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    (port,) = free_ports(1)
    directory.mkdir(parents=True, exist_ok=True)
    log_path = directory / "broker.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "rift_broker.cli", "serve",
                "--listen", f"{HOST}:{port}",
                "--data-dir", str(directory / "data"),
            ],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    return process, f"{HOST}:{port}", log_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rift_broker.bench.failover", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--trials", type=int, default=20, help="failover trials (default 20)")
    parser.add_argument("--seconds", type=float, default=10.0, help="each throughput run")
    parser.add_argument("--chunk", type=int, default=2000, help="records per send_many")
    parser.add_argument("--record-bytes", type=int, default=100)
    parser.add_argument("--dir", type=Path, help="where data and logs go (default: temporary)")
    parser.add_argument("--session-timeout-ms", type=int, default=2000)
    parser.add_argument("--election-timeout-ms", type=int, default=500)
    parser.add_argument("--replica-lag-time-max-ms", type=int, default=2000)
    args = parser.parse_args(argv)
    if args.trials < 1 or args.seconds <= 0 or args.chunk < 1:
        parser.error("--trials, --seconds and --chunk must be positive")
    with tempfile.TemporaryDirectory(prefix="rift-failover-") as tmp:
        root = args.dir or Path(tmp)
        print(
            f"cluster: 3 nodes on {HOST}, session {args.session_timeout_ms} ms, election "
            f"{args.election_timeout_ms} ms, replica lag {args.replica_lag_time_max_ms} ms; "
            f"producer {PRODUCER}",
            flush=True,
        )
        with LocalCluster(
            nodes=3,
            directory=root / "cluster",
            session_timeout_ms=args.session_timeout_ms,
            election_timeout_ms=args.election_timeout_ms,
            replica_lag_time_max_ms=args.replica_lag_time_max_ms,
        ) as cluster:
            cluster.start()
            cluster.wait_registered()
            print(
                f"failover: {args.trials} trials "
                "(SIGKILL the leader -> ack of the first write sent after)"
            )
            trials = measure_failover(cluster, args.trials)
            times = [t.seconds * 1000 for t in trials]
            print(
                f"failover over {len(times)} trials: median {statistics.median(times):.1f} ms, "
                f"max {max(times):.1f} ms, min {min(times):.1f} ms",
                flush=True,
            )
            _wait("a full ISR", lambda: len(_describe(cluster.bootstrap).isr) == 3)
            cluster_rate = measure_throughput(
                cluster.bootstrap,
                seconds=args.seconds,
                chunk=args.chunk,
                record_bytes=args.record_bytes,
            )
        process, bootstrap, log_path = _single_node(root / "single")
        try:
            _wait("the single broker", lambda: _reachable(bootstrap))
            _create(bootstrap, replication_factor=1, min_isr=1)
            single_rate = measure_throughput(
                bootstrap, seconds=args.seconds, chunk=args.chunk, record_bytes=args.record_bytes
            )
        except SystemExit:
            print(log_tail(log_path), file=sys.stderr)
            raise
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    mb = args.record_bytes / 1e6
    print(f"acks=all throughput, {args.seconds:g} s each, {args.record_bytes}-byte records:")
    print(
        f"  3-node cluster (RF 3, min.insync.replicas 2): {cluster_rate:10.0f} records/s "
        f"({cluster_rate * mb:.2f} MB/s)"
    )
    print(
        f"  single node    (RF 1):                        {single_rate:10.0f} records/s "
        f"({single_rate * mb:.2f} MB/s)"
    )
    print(f"  ratio cluster/single: {cluster_rate / single_rate:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
