"""rift-check: exit codes, run directories, results.json, one-line errors."""

from __future__ import annotations

import json

import pytest

from rift_checker.cli import main
from rift_checker.testing import HistoryBuilder


def _history(tmp_path, *, lose: bool = False, final: bool = True):
    b = HistoryBuilder()
    b.send(process=0, value="a", offset=0)
    b.send(process=0, value="b", offset=1)
    if final:
        b.final_read(records={"t/0": [(1, "b")] if lose else [(0, "a"), (1, "b")]})
    path = tmp_path / "history.jsonl"
    path.write_text(b.text())
    return path


def test_valid_exits_0_and_writes_results(tmp_path, capsys):
    path = _history(tmp_path)
    assert main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "VALID" in out
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["rift_results"] == 1
    assert results["valid"] is True
    assert set(results) >= {"checks", "anomalies", "statistics", "header", "unknown_reasons"}
    assert results["checks"]["lost-write"]["status"] == "ok"
    assert results["statistics"]["by_f"]["send"]["ok"] == 2


def test_invalid_exits_1_and_explains(tmp_path, capsys):
    path = _history(tmp_path, lose=True)
    assert main([str(tmp_path)]) == 1  # a run directory
    out = capsys.readouterr().out
    assert "INVALID" in out
    assert "lost-write" in out
    assert "never read" in out
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["valid"] is False
    assert results["anomalies"] == {"lost-write": 1}
    case = results["checks"]["lost-write"]["cases"][0]
    assert case["ops"] == [0, 4]
    assert case["explanation"]
    assert path.exists()


def test_ops_option_prints_the_proof_operations(tmp_path, capsys):
    path = _history(tmp_path, lose=True)
    assert main([str(path), "--ops", "-o", "-"]) == 1
    out = capsys.readouterr().out
    assert "op 0: process 0: send" in out
    assert "-> ok" in out


def test_unknown_exits_2(tmp_path, capsys):
    _history(tmp_path, final=False)
    assert main([str(tmp_path), "-q"]) == 2
    assert capsys.readouterr().out.startswith("unknown")


def test_tolerate_and_output_options(tmp_path, capsys):
    path = _history(tmp_path, lose=True)
    out = tmp_path / "elsewhere.json"
    assert main([str(path), "--tolerate", "lost-write", "-o", str(out), "-q"]) == 0
    assert json.loads(out.read_text())["checks"]["lost-write"]["status"] == "tolerated"
    assert not (tmp_path / "results.json").exists()
    assert main([str(path), "--checks", "unseen,duplicate", "-o", "-", "-q"]) == 0
    assert not (tmp_path / "results.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{dir}/absent.jsonl"], "does not exist"),
        (["{dir}"], "without a history.jsonl"),
        (["{dir}/bad.jsonl"], "bad.jsonl:2: not JSON"),
        (["{dir}/good.jsonl", "--tolerate", "nope"], "unknown check name"),
    ],
)
def test_errors_exit_2_with_one_line(tmp_path, capsys, args, message):
    (tmp_path / "bad.jsonl").write_text('{"rift_history": 1}\n{oops\n')
    (tmp_path / "good.jsonl").write_text('{"rift_history": 1}\n')
    assert main([a.format(dir=tmp_path) for a in args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert err.startswith("error:")
    assert "Traceback" not in err


def test_help_explains(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "history.jsonl" in out
    assert "Exit status" in out
    assert "lost-write" in out


def test_a_big_history_is_checked_with_a_progress_bar_told_every_byte(tmp_path, monkeypatch):
    from rift_checker import cli
    from rift_checker.config import CheckConfig
    from rift_checker.synth import generate_history

    path = tmp_path / "history.jsonl"
    generate_history(path, ops=2000, seed=1)
    told: list[int] = []
    monkeypatch.setattr(cli, "PROGRESS_FROM_BYTES", 0)
    monkeypatch.setattr(cli.Progress, "advance", lambda self, task, n: told.append(n))
    result = cli._check_with_progress(path, CheckConfig(), show=True)
    assert result.valid is True
    assert sum(told) == path.stat().st_size
    told.clear()
    cli._check_with_progress(path, CheckConfig(), show=False)
    assert told == []  # quiet, or not a terminal: no bar
