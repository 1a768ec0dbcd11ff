"""Workloads: a YAML test definition, parsed and validated into frozen values.

A workload says what to run and how to break it::

    name: partition
    backend: netns          # netns | local | docker | ssh | fake
    nodes: 3
    time_limit: 60          # seconds of client load and faults
    seed: 42                # optional; a run without one draws and records a seed
    system: {name: rift-broker, replication_factor: 3, min_insync_replicas: 2,
             acks: all, idempotence: true, partitions: 3, topic: rift, options: {}}
    client: {concurrency: 5, rate: 50, mix: {send: 0.8, poll: 0.2}, timeout: 5}
    nemesis: {kinds: [partition-random-halves], interval: 10, schedule: alternate,
              targets: one, max_clock_offset: 60}
    checks: {run: all, tolerate: []}

Every section but ``name`` has defaults. Any error is one line naming the field,
e.g. ``workloads/x.yaml: client.rate: must be a positive number, got -1``. Unknown
fields are errors too, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rift_chaos.errors import InvalidWorkload
from rift_chaos.generator.spec import PARTITION_KINDS, ClientSpec, NemesisSpec
from rift_chaos.remote import BACKENDS
from rift_chaos.system import ACKS, SystemSettings

__all__ = ["ChecksSpec", "Workload", "load_workload", "parse_workload"]

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
# Partition shapes that need at least three nodes.
_THREE_NODE_KINDS = ("partition-majorities-ring", "partition-bridge")


@dataclass(frozen=True, slots=True, kw_only=True)
class ChecksSpec:
    """Which checker checks to run (``("all",)`` for every one) and which anomalies to tolerate."""

    run: tuple[str, ...] = ("all",)
    tolerate: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Workload:
    name: str
    backend: str = "netns"
    nodes: int = 3
    time_limit: float = 60.0
    seed: int | None = None
    system: SystemSettings = field(default_factory=SystemSettings)
    client: ClientSpec = field(default_factory=ClientSpec)
    nemesis: NemesisSpec = field(default_factory=NemesisSpec)
    checks: ChecksSpec = field(default_factory=ChecksSpec)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise InvalidWorkload(
                f"name: must be lowercase letters, digits, - or _, got {self.name!r}"
            )
        if self.backend not in BACKENDS:
            raise InvalidWorkload(
                f"backend: must be one of {', '.join(BACKENDS)}, got {self.backend!r}"
            )
        if not isinstance(self.nodes, int) or not 1 <= self.nodes <= 250:
            raise InvalidWorkload(f"nodes: must be an integer from 1 to 250, got {self.nodes!r}")
        if not isinstance(self.time_limit, int | float) or not self.time_limit > 0:
            raise InvalidWorkload(
                f"time_limit: must be a positive number of seconds, got {self.time_limit!r}"
            )
        if self.seed is not None and (not isinstance(self.seed, int) or self.seed < 0):
            raise InvalidWorkload(f"seed: must be a non-negative integer, got {self.seed!r}")
        _check_system(self.system, nodes=self.nodes)
        partitions = [k for k in self.nemesis.kinds if k in PARTITION_KINDS]
        if partitions and self.backend == "local":
            raise InvalidWorkload(
                "nemesis.kinds: partitions need a backend with a network per node "
                "(netns, docker, ssh, fake), not local"
            )
        min_nodes = 3 if any(k in _THREE_NODE_KINDS for k in partitions) else 2
        if partitions and self.nodes < min_nodes:
            raise InvalidWorkload(
                f"nodes: {', '.join(partitions)} needs at least {min_nodes} nodes"
            )

    def with_overrides(
        self,
        *,
        time_limit: float | None = None,
        nodes: int | None = None,
        seed: int | None = None,
        backend: str | None = None,
    ) -> Workload:
        """This workload with command-line overrides applied (and validated again)."""
        changes: dict[str, Any] = {
            key: value
            for key, value in (
                ("time_limit", time_limit),
                ("nodes", nodes),
                ("seed", seed),
                ("backend", backend),
            )
            if value is not None
        }
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The resolved workload as plain data (YAML/JSON-ready); parses back to an equal value."""
        out = dataclasses.asdict(self)
        out["nemesis"]["kinds"] = list(self.nemesis.kinds)
        out["checks"] = {"run": list(self.checks.run), "tolerate": list(self.checks.tolerate)}
        out["system"]["options"] = dict(self.system.options)
        out["client"]["mix"] = dict(self.client.mix)
        return out


def _check_system(system: SystemSettings, *, nodes: int) -> None:
    for name in ("replication_factor", "min_insync_replicas", "partitions"):
        value = getattr(system, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InvalidWorkload(f"system.{name}: must be an integer >= 1, got {value!r}")
    if system.replication_factor > nodes:
        raise InvalidWorkload(
            f"system.replication_factor: {system.replication_factor} is more than the {nodes} nodes"
        )
    if system.min_insync_replicas > system.replication_factor:
        raise InvalidWorkload(
            f"system.min_insync_replicas: {system.min_insync_replicas} is more than "
            f"replication_factor {system.replication_factor}"
        )
    if system.acks not in ACKS:
        raise InvalidWorkload(f"system.acks: must be one of {', '.join(ACKS)}, got {system.acks!r}")
    if not isinstance(system.idempotence, bool):
        raise InvalidWorkload(
            f"system.idempotence: must be true or false, got {system.idempotence!r}"
        )
    if not isinstance(system.topic, str) or not system.topic:
        raise InvalidWorkload(f"system.topic: must be a non-empty string, got {system.topic!r}")
    if not system.name:
        raise InvalidWorkload("system.name: must name a registered system")


def load_workload(path: Path) -> Workload:
    """Read and validate the workload at ``path``."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise InvalidWorkload(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InvalidWorkload(f"{path}: not valid YAML{where}") from exc
    try:
        return parse_workload(data)
    except InvalidWorkload as exc:
        raise InvalidWorkload(f"{path}: {exc}") from exc


def parse_workload(data: object) -> Workload:
    """Validate plain data (as loaded from YAML) into a Workload."""
    top = _mapping("workload", data)
    _known("", top, {f.name for f in dataclasses.fields(Workload)})
    if "name" not in top:
        raise InvalidWorkload("name: is required")
    fields: dict[str, Any] = {k: v for k, v in top.items() if k not in _SECTIONS}
    if "time_limit" in fields:
        fields["time_limit"] = _number("time_limit", fields["time_limit"])
    for key in ("nodes", "seed"):
        if key in fields and fields[key] is not None:
            fields[key] = _integer(key, fields[key])
    for section, build in _SECTIONS.items():
        if section in top and top[section] is not None:
            fields[section] = build(_mapping(section, top[section]))
    return Workload(**fields)


def _system(data: Mapping[str, Any]) -> SystemSettings:
    _known("system.", data, {f.name for f in dataclasses.fields(SystemSettings)})
    values = dict(data)
    if "acks" in values:
        values["acks"] = "all" if values["acks"] in ("all", -1) else str(values["acks"])
    if "options" in values:
        values["options"] = dict(_mapping("system.options", values["options"]))
    return SystemSettings(**values)


def _client(data: Mapping[str, Any]) -> ClientSpec:
    _known("client.", data, {f.name for f in dataclasses.fields(ClientSpec)})
    values = dict(data)
    for key in ("rate", "timeout"):
        if key in values:
            values[key] = _number(f"client.{key}", values[key])
    if "concurrency" in values:
        values["concurrency"] = _integer("client.concurrency", values["concurrency"])
    if "mix" in values:
        mix = _mapping("client.mix", values["mix"])
        values["mix"] = {str(f): _number(f"client.mix.{f}", w) for f, w in mix.items()}
    return ClientSpec(**values)


def _nemesis(data: Mapping[str, Any]) -> NemesisSpec:
    _known("nemesis.", data, {f.name for f in dataclasses.fields(NemesisSpec)} | {"kind"})
    values = dict(data)
    if "kind" in values:
        if "kinds" in values:
            raise InvalidWorkload("nemesis.kind: give kind or kinds, not both")
        values["kinds"] = values.pop("kind")
    if "kinds" in values:
        values["kinds"] = _strings("nemesis.kinds", values["kinds"], none_word="none")
    for key in ("interval", "max_clock_offset"):
        if key in values:
            values[key] = _number(f"nemesis.{key}", values[key])
    return NemesisSpec(**values)


def _checks(data: Mapping[str, Any]) -> ChecksSpec:
    _known("checks.", data, {"run", "tolerate"})
    return ChecksSpec(
        run=_strings("checks.run", data.get("run", ["all"])) or ("all",),
        tolerate=_strings("checks.tolerate", data.get("tolerate", [])),
    )


_SECTIONS = {"system": _system, "client": _client, "nemesis": _nemesis, "checks": _checks}


def _mapping(name: str, value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidWorkload(f"{name}: must be a mapping, got {type(value).__name__}")
    return value


def _known(prefix: str, data: Mapping[str, Any], allowed: set[str]) -> None:
    for key in data:
        if key not in allowed:
            raise InvalidWorkload(
                f"{prefix}{key}: unknown field; known: {', '.join(sorted(allowed))}"
            )


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidWorkload(f"{name}: must be a number, got {value!r}")
    return float(value)


def _integer(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidWorkload(f"{name}: must be an integer, got {value!r}")
    return value


def _strings(name: str, value: object, *, none_word: str | None = None) -> tuple[str, ...]:
    if value is None or value == none_word:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        raise InvalidWorkload(f"{name}: must be a string or a list of strings, got {value!r}")
    return tuple(items)
