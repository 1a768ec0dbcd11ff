"""CheckConfig validation, the results.json schema, rendering, statistics, the bench."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from rift_checker import CHECKS, CheckConfig, InvalidConfig, check_history, render
from rift_checker.bench import main as bench_main
from rift_checker.stats import quantile
from rift_checker.synth import generate_history
from rift_checker.testing import HistoryBuilder


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"checks": frozenset({"lost"})}, "unknown check name"),
        ({"tolerate": frozenset({"dup"})}, "unknown check name"),
        ({"tolerate": "duplicate"}, "not one string"),
        ({"max_cases": -1}, ">= 0"),
        ({"max_cases": True}, "integer"),
    ],
)
def test_config_rejects_bad_settings(kwargs, message):
    with pytest.raises(InvalidConfig, match=message):
        CheckConfig(**kwargs)


def test_config_accepts_any_iterable_of_names():
    config = CheckConfig(tolerate=["duplicate", "poll-skip"])  # type: ignore[arg-type]
    assert config.tolerate == frozenset({"duplicate", "poll-skip"})
    assert CheckConfig().checks == frozenset(CHECKS)


def _invalid():
    b = HistoryBuilder()
    b.send(process=0, value="a", offset=0)
    b.send(process=0, value="b", offset=1)
    b.final_read(records={"t/0": [(1, "b")]})
    return b


def test_results_json_schema(tmp_path):
    result = _invalid().check()
    path = tmp_path / "results.json"
    result.write_json(path)
    data = json.loads(path.read_text())
    assert data["rift_results"] == 1
    assert data["valid"] is False
    assert list(data["checks"]) == list(CHECKS)
    for check in data["checks"].values():
        assert set(check) == {"status", "description", "count", "unknown", "cases", "truncated"}
    case = data["checks"]["lost-write"]["cases"][0]
    assert set(case) == {"ops", "explanation", "steps"}
    stats = data["statistics"]
    assert stats["ops"] == 3
    assert stats["events"] == 6
    assert stats["duration_s"] == 5e-9  # the builder's clock ticks 1 ns per event
    assert stats["throughput_ok_per_s"] == 3 / 5e-9
    assert stats["by_type"] == {"ok": 3, "fail": 0, "info": 0}
    assert set(stats["latency_ms"]["send"]) == {"count", "p50", "p90", "p99", "max"}
    assert not list(tmp_path.glob("*.tmp"))


def test_max_cases_keeps_the_count_exact():
    b = HistoryBuilder()
    for i in range(5):
        b.leader(node="n1", epoch=i)
        b.leader(node="n2", epoch=i)
    result = b.check(config=CheckConfig(max_cases=2))
    check = result.check("multiple-leaders")
    assert check.count == 5
    assert len(check.cases) == 2
    assert check.truncated


def test_render_shows_verdict_counts_and_cases():
    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(render(_invalid().check(), cases_per_check=1))
    out = console.file.getvalue()
    assert "INVALID" in out
    assert "lost-write" in out
    assert "never read" in out


def test_statistics_count_incomplete_ops_as_info():
    b = HistoryBuilder()
    b.invoke_send(process=0, value="a")
    stats = b.check().statistics
    assert stats["incomplete"] == 1
    assert stats["by_f"]["send"] == {"ok": 0, "fail": 0, "info": 1}


def test_quantile_nearest_rank():
    values = list(range(1, 101))
    assert quantile(values, 0.5) == 50
    assert quantile(values, 0.99) == 99
    assert quantile([7], 0.9) == 7


def test_statistics_of_a_generated_history():
    buf = io.StringIO()
    generate_history(buf, ops=500, seed=3, observe_rate=0.1)
    lines = buf.getvalue().splitlines()
    stats = check_history(io.StringIO(buf.getvalue())).statistics
    assert stats["ops"] == 500
    assert stats["events"] == len(lines) - 1
    first, last = json.loads(lines[1])["time"], json.loads(lines[-1])["time"]
    assert stats["duration_s"] == (last - first) / 1e9
    assert sum(c["ok"] for c in stats["by_f"].values()) == stats["by_type"]["ok"]


def test_synth_is_deterministic():
    a, b = io.StringIO(), io.StringIO()
    generate_history(a, ops=200, seed=7)
    generate_history(b, ops=200, seed=7)
    assert a.getvalue() == b.getvalue()
    assert check_history(io.StringIO(a.getvalue())).valid is True


def test_bench_runs(capsys):
    assert bench_main(["--ops", "300"]) == 0
    out = capsys.readouterr().out
    assert "ops/s" in out
    assert "peak RSS" in out
