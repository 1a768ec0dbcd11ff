from __future__ import annotations

from pathlib import Path

import pytest

from rift_chaos.cli import main

WORKLOADS = Path(__file__).resolve().parents[4] / "workloads"


@pytest.mark.parametrize(
    "argv", [["--help"], ["run", "--help"], ["check", "--help"], ["heal", "--help"]]
)
def test_help_is_real(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    assert "usage: chaos" in capsys.readouterr().out


def test_run_of_a_missing_workload_is_one_line(tmp_path: Path, capsys) -> None:
    assert main(["run", str(tmp_path / "nope.yaml"), "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("chaos: error: ")
    assert err.count("\n") == 1


def test_run_reports_an_invalid_workload_in_one_line(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nnodes: 0\n")
    assert main(["run", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "nodes: must be an integer from 1" in err


def test_run_overrides_are_validated(capsys) -> None:
    assert main(["run", str(WORKLOADS / "kill.yaml"), "--nodes", "1"]) == 2
    assert "replication_factor" in capsys.readouterr().err


def test_check_without_a_history_is_one_line(tmp_path: Path, capsys) -> None:
    assert main(["check", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no history.jsonl" in err
    assert err.count("\n") == 1


def test_usage_errors_exit_2(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["heal"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["heal", "--all", "--run-id", "x"])
    assert info.value.code == 2
