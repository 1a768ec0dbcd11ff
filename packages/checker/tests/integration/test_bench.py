"""The benchmark command runs end to end and prints its table (figures are not asserted)."""

from __future__ import annotations

import pytest

from rift_checker import bench

pytestmark = pytest.mark.integration


def test_bench_prints_a_row_per_size_and_the_growth(capsys, tmp_path):
    status = bench.main(["--ops", "200", "2000", "--repeat", "1", "--keep", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 0
    assert "ops/s CPU" in out
    assert "peak RSS" in out
    assert "200 ->     2,000: size x10.0" in out
    assert "largest history: 2,000 ops" in out
    assert (tmp_path / "history-2000.jsonl").is_file()


def test_bench_compares_with_the_pure_python_pass(capsys, tmp_path):
    status = bench.main(["--ops", "300", "--repeat", "1", "--compare-python"])
    out = capsys.readouterr().out
    assert status == 0
    assert "native core: on" in out
    assert "pure Python" in out
    assert "speedup" in out
