"""The runner end to end on the fake backend: real threads and real time, short runs."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from rift_chaos.cli import main
from rift_chaos.fake_system import FakeLog, FakeSystem
from rift_chaos.remote import Remote
from rift_chaos.runner import Runner
from rift_chaos.workload import parse_workload

pytestmark = pytest.mark.integration


def workload(**overrides: object):
    data = {
        "name": "fake-kill",
        "backend": "fake",
        "nodes": 3,
        "time_limit": 3,
        "seed": 11,
        "system": {"name": "fake", "replication_factor": 3, "min_insync_replicas": 2,
                   "partitions": 2, "topic": "rift"},
        "client": {"concurrency": 4, "rate": 150, "mix": {"send": 0.7, "poll": 0.3},
                   "timeout": 1},
        "nemesis": {"kinds": ["kill", "pause", "partition-random-halves"], "interval": 0.5,
                    "schedule": "random"},
        "checks": {"run": "all"},
    }  # fmt: skip
    data.update(overrides)
    return parse_workload(data)


def quiet() -> Console:
    return Console(file=io.StringIO(), force_terminal=False)


def test_a_correct_system_under_faults_is_valid_and_the_run_is_stored(tmp_path: Path) -> None:
    outcome = Runner(workload(), results=tmp_path, console=quiet()).run()
    assert outcome.result.valid is True, outcome.result.anomalies
    assert outcome.exit_code == 0
    run = outcome.directory
    for name in ("workload.yaml", "history.jsonl", "nemesis.jsonl", "results.json", "report.html"):
        assert (run / name).is_file(), name
    assert (tmp_path / "latest").resolve() == run.resolve()
    assert (tmp_path / "fake-kill" / "latest").resolve() == run.resolve()
    stored = yaml.safe_load((run / "workload.yaml").read_text())
    assert stored["seed"] == 11
    lines = [json.loads(x) for x in (run / "history.jsonl").read_text().splitlines()]
    fs = {x.get("f") for x in lines[1:]}
    assert {"send", "poll", "final-read"} <= fs
    assert any(x.get("process") == "nemesis" for x in lines[1:])
    timeline = [json.loads(x) for x in (run / "nemesis.jsonl").read_text().splitlines()]
    assert {e["phase"] for e in timeline} == {"start", "end"}
    results = json.loads((run / "results.json").read_text())
    assert results["valid"] is True


class LosingLog(FakeLog):
    """Forgets the newest acknowledged records of every partition when asked."""

    HOLE = object()

    def lose_tail(self, n: int) -> None:
        with self._lock:
            for values in self._partitions.values():
                for i in range(max(0, len(values) - n), len(values)):
                    values[i] = self.HOLE

    def read(self, tp: str, start: int, limit: int) -> list[list[object]]:
        return [r for r in super().read(tp, start, limit) if r[1] is not self.HOLE]


class LosingSystem(FakeSystem):
    """Acknowledges writes, then loses the last few whenever a node is killed."""

    def __init__(self, *, settings) -> None:
        super().__init__(settings=settings, log=LosingLog())

    def kill(self, remote: Remote) -> None:
        super().kill(remote)
        assert isinstance(self.log, LosingLog)
        self.log.lose_tail(3)


def test_a_system_that_loses_acknowledged_writes_is_invalid_with_the_losses_listed(
    tmp_path: Path,
) -> None:
    w = workload(
        name="losing",
        system={"name": "losing", "partitions": 2, "topic": "rift", "replication_factor": 3,
                "min_insync_replicas": 2},
        nemesis={"kinds": ["kill"], "interval": 0.4, "schedule": "alternate"},
    )  # fmt: skip
    outcome = Runner(w, results=tmp_path, console=quiet(), registry={"losing": LosingSystem}).run()
    assert outcome.result.valid is False
    assert outcome.exit_code == 1
    lost = outcome.result.check("lost-write")
    assert lost.count > 0
    assert all("acknowledged" in case.explanation for case in lost.cases)
    html = (outcome.directory / "report.html").read_text()
    assert "lost-write" in html


def test_cli_run_and_check_exit_codes(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(
        yaml.safe_dump(
            {"name": "cli", "backend": "fake", "nodes": 3, "time_limit": 1, "seed": 3,
             "system": {"name": "fake", "partitions": 1, "topic": "t"},
             "client": {"concurrency": 2, "rate": 50, "timeout": 1},
             "nemesis": {"kinds": ["pause"], "interval": 0.3}}
        )
    )  # fmt: skip
    results = tmp_path / "results"
    assert main(["run", str(path), "--results", str(results), "--time-limit", "1"]) == 0
    assert main(["check", str(results / "latest")]) == 0
    assert main(["check", str(tmp_path / "nowhere")]) == 2
