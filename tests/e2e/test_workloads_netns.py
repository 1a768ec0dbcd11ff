"""The shipped workloads against a 3-node broker cluster in network namespaces.

Short time limits keep CI fast; the faults still happen (their interval is
shortened with the time limit) and the verdict must be valid. A deliberately
broken System — the real broker, but its clients acknowledge writes the leader
has not replicated (acks=1) — must be caught under the same partitions.
"""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from rift_broker.chaos_plugin import BrokerClient, BrokerSystem
from rift_chaos.runner import Runner
from rift_chaos.system import SystemSettings
from rift_chaos.workload import Workload, load_workload

WORKLOADS = Path(__file__).resolve().parents[2] / "workloads"


def shortened(name: str, *, time_limit: float, interval: float, seed: int) -> Workload:
    w = load_workload(WORKLOADS / f"{name}.yaml")
    nemesis = dataclasses.replace(w.nemesis, interval=interval)
    return dataclasses.replace(w, nemesis=nemesis).with_overrides(time_limit=time_limit, seed=seed)


def run(workload: Workload, tmp_path: Path, **kwargs) -> tuple[object, Path]:
    console = Console(file=io.StringIO(), force_terminal=False, width=120)
    outcome = Runner(workload, results=tmp_path, console=console, **kwargs).run()
    return outcome, outcome.directory


@pytest.mark.root
@pytest.mark.parametrize("name", ["partition", "kill"])
def test_shipped_workload_is_valid(name: str, tmp_path: Path, root_only: None) -> None:
    outcome, run_dir = run(shortened(name, time_limit=24, interval=6, seed=7), tmp_path)
    results = json.loads((run_dir / "results.json").read_text())
    assert outcome.result.valid is True, json.dumps(results["anomalies"])
    stats = results["statistics"]
    assert stats["by_f"]["send"]["ok"] > 50
    faults = [json.loads(x) for x in (run_dir / "nemesis.jsonl").read_text().splitlines()]
    assert any(f["phase"] == "start" for f in faults), "no fault was injected"
    assert stats["observations"]["leader"] >= 3
    assert (run_dir / "report.html").stat().st_size > 1000


@pytest.mark.root
def test_group_workload_is_valid(tmp_path: Path, root_only: None) -> None:
    """Workers subscribe to one group, poll and commit through broker kills; the
    group's assignments are reported and the checker holds them to the commits."""
    outcome, run_dir = run(shortened("group", time_limit=30, interval=8, seed=5), tmp_path)
    results = json.loads((run_dir / "results.json").read_text())
    assert outcome.result.valid is True, json.dumps(results["anomalies"])
    by_f = results["statistics"]["by_f"]
    assert by_f["subscribe"]["ok"] >= 1
    assert by_f["commit"]["ok"] > 5
    history = [json.loads(x) for x in (run_dir / "history.jsonl").read_text().splitlines()[1:]]
    assigned = [
        op for op in history if isinstance(op.get("value"), dict) and "assigned" in op["value"]
    ]
    assert assigned, "no poll reported a group assignment"


class UnreplicatedClient(BrokerClient):
    """Produces with acks=1: acknowledged once the leader alone has the write."""

    def __init__(self, *, settings: SystemSettings, nodes) -> None:
        unsafe = dataclasses.replace(settings, acks="1", idempotence=False)
        super().__init__(settings=unsafe, nodes=nodes)


class UnreplicatedSystem(BrokerSystem):
    def client(self) -> UnreplicatedClient:
        return UnreplicatedClient(settings=self.settings, nodes=self._nodes)


@pytest.mark.root
def test_a_system_acknowledging_unreplicated_writes_is_caught(
    tmp_path: Path, root_only: None
) -> None:
    w = shortened("partition", time_limit=30, interval=8, seed=3)
    nemesis = dataclasses.replace(w.nemesis, kinds=("partition-leader",))
    system = dataclasses.replace(w.system, name="unreplicated", partitions=1)
    w = dataclasses.replace(w, nemesis=nemesis, system=system)
    outcome, run_dir = run(w, tmp_path, registry={"unreplicated": UnreplicatedSystem})
    results = json.loads((run_dir / "results.json").read_text())
    assert outcome.result.valid is False, results["anomalies"]
    lost = results["checks"]["lost-write"]
    assert lost["count"] > 0, results["anomalies"]
    assert lost["cases"][0]["ops"]
