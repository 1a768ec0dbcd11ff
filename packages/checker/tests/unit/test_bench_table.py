"""The benchmark's table: growth ratios and exponents from measured rows."""

from __future__ import annotations

from rift_checker import bench


def test_table_growth_exponents():
    def row(ops: int, cpu: float, rss: float, best: float) -> bench.Measure:
        return bench.Measure(
            ops=ops,
            events=2 * ops,
            size_mb=ops / 1e4,
            cpu=cpu,
            cpu_best=best,
            decode=cpu / 2,
            over_decode=2.0,
            python=None,
            speedup=None,
            wall=cpu,
            rss=rss,
            rss_before=40.0,
            valid=True,
            runs=1,
        )

    table = bench._table([row(10_000, 0.05, 45.0, 0.04), row(1_000_000, 5.0, 540.0, 40.0)])
    assert "CPU time x100.0 (k=1.00; best k=1.50)" in table
    assert "memory x100.0 (k=1.00)" in table


def test_table_shows_the_pure_python_figures_when_measured():
    row = bench.Measure(
        ops=1000,
        events=2000,
        size_mb=0.3,
        cpu=0.5,
        cpu_best=0.4,
        decode=0.25,
        over_decode=2.0,
        python=1.0,
        speedup=2.0,
        wall=0.5,
        rss=40.0,
        rss_before=38.0,
        valid=True,
        runs=1,
    )
    table = bench._table([row])
    assert "Python s" in table.splitlines()[0]
    assert "    1.00   2.00x" in table.splitlines()[2]
