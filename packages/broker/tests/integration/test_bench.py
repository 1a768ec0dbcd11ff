"""``broker bench`` as a user runs it: a short run prints every figure (no timing thresholds)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

BROKER = [sys.executable, "-m", "rift_broker.cli"]

_FIGURES = {
    "records/s": r"records/s\s+([\d,.]+)",
    "MB/s": r"MB/s\s+([\d,.]+)\s+\(record values\)",
    "p50": r"latency p50\s+([\d.]+) ms",
    "p99": r"latency p99\s+([\d.]+) ms",
    "p99.9": r"latency p99\.9\s+([\d.]+) ms",
    "records appended": r"records appended\s+([\d,]+)",
    "fsyncs": r"fsyncs\s+([\d,]+)\s+\(",
    "records/fsync": r"records/fsync\s+([\d,.]+)",
    "raw fsyncs/s": r"fsyncs/s\s+([\d,.]+)",
    "raw MB/s": r"  MB/s\s+([\d,.]+)\n  fsync p50",
}


def _bench(*args: str) -> str:
    done = subprocess.run(
        [*BROKER, "bench", "--start", "--seconds", "2", "--raw-seconds", "1", *args],
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _figures(out: str) -> dict[str, float]:
    found = {}
    for name, pattern in _FIGURES.items():
        match = re.search(pattern, out)
        assert match, f"no {name} in:\n{out}"
        found[name] = float(match.group(1).replace(",", ""))
    return found


@pytest.mark.parametrize("acks", ["all", "1"])
def test_bench_prints_every_figure(acks: str) -> None:
    out = _bench("--acks", acks, "--tasks", "50")
    figures = _figures(out)
    assert all(value > 0 for value in figures.values()), out
    assert "0 errors" in out


def test_bench_with_worker_processes() -> None:
    out = _bench("--processes", "2", "--tasks", "20", "--clients", "2")
    assert all(value > 0 for value in _figures(out).values()), out


def test_bench_with_confluent() -> None:
    pytest.importorskip("confluent_kafka")
    out = _bench("--client", "confluent", "--window", "500")
    assert all(value > 0 for value in _figures(out).values()), out


def test_bench_rejects_a_bad_flag() -> None:
    done = subprocess.run(
        [*BROKER, "bench", "--start", "--seconds", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "--seconds must be positive" in done.stderr


def test_histogram_percentiles_are_within_one_percent() -> None:
    from rift_broker.bench._histogram import LatencyHistogram

    histogram = LatencyHistogram()
    histogram.add_all(i / 1e5 for i in range(1, 10_001))  # 10 us .. 100 ms, evenly
    other = LatencyHistogram()
    other.add(0.2)
    histogram.merge(other)
    assert histogram.total == 10_001
    for q, exact in ((50, 0.05), (99, 0.099), (99.9, 0.0999)):
        assert exact <= histogram.percentile(q) <= exact * 1.0101
    assert histogram.percentile(100) >= 0.2
    assert LatencyHistogram().percentile(99) == 0.0
