from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from rift_chaos.errors import ChaosError, InvalidWorkload
from rift_chaos.workload import Workload, load_workload, parse_workload

WORKLOADS = Path(__file__).resolve().parents[4] / "workloads"
SHIPPED = sorted(WORKLOADS.glob("*.yaml"))


def test_every_required_workload_ships() -> None:
    names = {p.stem for p in SHIPPED}
    assert {"partition", "kill", "pause", "clock", "mixed"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_workloads_are_valid_and_round_trip(path: Path) -> None:
    workload = load_workload(path)
    assert workload.name == path.stem
    assert workload.nemesis.active
    assert parse_workload(workload.to_dict()) == workload
    assert parse_workload(yaml.safe_load(yaml.safe_dump(workload.to_dict()))) == workload


def test_defaults_fill_in_missing_sections() -> None:
    workload = parse_workload({"name": "minimal"})
    assert (workload.backend, workload.nodes, workload.seed) == ("netns", 3, None)
    assert workload.system.acks == "all"
    assert not workload.nemesis.active


def test_values_are_frozen() -> None:
    workload = parse_workload({"name": "minimal"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        workload.nodes = 5  # type: ignore[misc]


def test_single_kind_and_acks_spellings() -> None:
    workload = parse_workload({"name": "w", "nemesis": {"kind": "kill"}, "system": {"acks": -1}})
    assert workload.nemesis.kinds == ("kill",)
    assert workload.system.acks == "all"
    assert parse_workload({"name": "w", "system": {"acks": 1}}).system.acks == "1"
    assert parse_workload({"name": "w", "nemesis": {"kinds": "none"}}).nemesis.kinds == ()


def test_overrides_apply_and_revalidate() -> None:
    workload = parse_workload({"name": "w"})
    changed = workload.with_overrides(time_limit=5, nodes=5, seed=9, backend="fake")
    assert (changed.time_limit, changed.nodes, changed.seed, changed.backend) == (5, 5, 9, "fake")
    assert workload.with_overrides() == workload
    with pytest.raises(InvalidWorkload, match="replication_factor"):
        workload.with_overrides(nodes=2)


BAD = [
    ({"nodes": 3}, "name: is required"),
    ({"name": "Bad Name"}, "name: must be"),
    ({"name": "w", "backend": "vm"}, "backend: must be one of"),
    ({"name": "w", "nodes": "three"}, "nodes: must be an integer"),
    ({"name": "w", "nodes": 0}, "nodes: must be an integer from 1"),
    ({"name": "w", "time_limit": -1}, "time_limit: must be a positive"),
    ({"name": "w", "seed": 1.5}, "seed: must be an integer"),
    ({"name": "w", "colour": "red"}, "colour: unknown field"),
    ({"name": "w", "system": {"replicas": 3}}, "system.replicas: unknown field"),
    ({"name": "w", "system": {"replication_factor": 5}}, "system.replication_factor: 5 is more"),
    ({"name": "w", "system": {"min_insync_replicas": 4}}, "system.min_insync_replicas: 4"),
    ({"name": "w", "system": {"acks": "some"}}, "system.acks: must be one of"),
    ({"name": "w", "system": {"idempotence": "yes"}}, "system.idempotence: must be true"),
    ({"name": "w", "system": {"partitions": 0}}, "system.partitions: must be an integer"),
    ({"name": "w", "system": []}, "system: must be a mapping"),
    ({"name": "w", "client": {"rate": "fast"}}, "client.rate: must be a number"),
    ({"name": "w", "client": {"rate": 0}}, "client.rate: must be a positive"),
    ({"name": "w", "client": {"concurrency": 0}}, "client.concurrency: must be an integer >= 1"),
    ({"name": "w", "client": {"mix": {"delete": 1}}}, "client.mix.delete: unknown operation"),
    ({"name": "w", "client": {"mix": {"send": -1}}}, "client.mix.send: must be a positive"),
    ({"name": "w", "nemesis": {"kinds": ["meteor"]}}, "nemesis.kinds: unknown kind"),
    ({"name": "w", "nemesis": {"kinds": [1]}}, "nemesis.kinds: must be a string"),
    ({"name": "w", "nemesis": {"kind": "kill", "kinds": ["kill"]}}, "nemesis.kind: give kind"),
    ({"name": "w", "nemesis": {"interval": 0}}, "nemesis.interval: must be a positive"),
    ({"name": "w", "nemesis": {"schedule": "often"}}, "nemesis.schedule: must be one of"),
    ({"name": "w", "nemesis": {"targets": "some"}}, "nemesis.targets: must be one of"),
    (
        {"name": "w", "backend": "local", "nemesis": {"kinds": ["partition-halves"]}},
        "nemesis.kinds: partitions need a backend",
    ),
    (
        {
            "name": "w",
            "nodes": 2,
            "system": {"replication_factor": 2, "min_insync_replicas": 1},
            "nemesis": {"kinds": ["partition-bridge"]},
        },
        "nodes: partition-bridge needs at least 3 nodes",
    ),
    ({"name": "w", "checks": {"run": [1]}}, "checks.run: must be a string"),
    ({"name": "w", "checks": {"skip": []}}, "checks.skip: unknown field"),
]


@pytest.mark.parametrize(("data", "message"), BAD, ids=[m.split(":")[0] for _, m in BAD])
def test_invalid_workloads_name_the_field(data: dict, message: str) -> None:
    with pytest.raises(InvalidWorkload, match=re.escape(message)) as info:
        parse_workload(data)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, ChaosError)


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidWorkload, match="cannot read"):
        load_workload(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(InvalidWorkload, match=r"broken\.yaml: not valid YAML at line"):
        load_workload(broken)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: w\nclient: {rate: -1}\n")
    with pytest.raises(InvalidWorkload, match=r"bad\.yaml: client\.rate"):
        load_workload(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n")
    with pytest.raises(InvalidWorkload, match="workload: must be a mapping"):
        load_workload(listy)


def test_workload_is_a_plain_value() -> None:
    assert Workload(name="w") == parse_workload({"name": "w"})
