"""The benchmark's table: growth ratios and exponents from measured rows."""

from __future__ import annotations

from typing import Any

from rift_checker import bench


def _row(ops: int, cpu: float, rss: float, best: float, **more: Any) -> bench.Measure:
    figures: dict[str, Any] = {
        "ops": ops,
        "events": 2 * ops,
        "size_mb": ops / 1e4,
        "cpu": cpu,
        "cpu_best": best,
        "decode": cpu / 2,
        "over_decode": 2.0,
        "python": None,
        "speedup": None,
        "wall": cpu,
        "rss": rss,
        "rss_before": 40.0,
        "valid": True,
        "runs": 1,
    }
    return bench.Measure(**(figures | more))


def test_table_growth_exponents():
    table = bench._table([_row(10_000, 0.05, 45.0, 0.04), _row(1_000_000, 5.0, 540.0, 40.0)])
    assert "CPU time x100.0 (k=1.00; best k=1.50)" in table
    assert "memory x100.0 (k=1.00)" in table
    assert "Python s" not in table


def test_table_shows_the_pure_python_figures_when_measured():
    table = bench._table([_row(1000, 0.5, 40.0, 0.4, python=1.0, speedup=2.0)])
    assert "Python s" in table.splitlines()[0]
    assert "    1.00   2.00x" in table.splitlines()[2]
