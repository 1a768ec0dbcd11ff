"""rift_chaos: Jepsen-style testing of distributed logs.

Concepts (DESIGN.md): a :mod:`~rift_chaos.remote` acts on nodes; a
:mod:`~rift_chaos.system` installs and runs the system under test; a
:mod:`~rift_chaos.client` turns operations into calls; a :mod:`~rift_chaos.nemesis`
injects faults; a :mod:`~rift_chaos.generator` schedules both; a
:mod:`~rift_chaos.workload` says what to run.
"""

from __future__ import annotations

from rift_chaos.client import Client, DefiniteFailure, complete_exceptionally
from rift_chaos.errors import (
    BackendUnavailable,
    ChaosError,
    CommandFailed,
    CommandTimeout,
    InvalidWorkload,
    NotImplementedYet,
    RemoteError,
    SystemNotFound,
    UnsupportedAbility,
)
from rift_chaos.op import NEMESIS, Op, OpType, next_process
from rift_chaos.system import (
    ClockControl,
    LeaderAware,
    System,
    SystemSettings,
    available_systems,
    load_system,
)
from rift_chaos.workload import ChecksSpec, Workload, load_workload, parse_workload

__all__ = [
    # errors
    "ChaosError",
    "RemoteError",
    "CommandFailed",
    "CommandTimeout",
    "BackendUnavailable",
    "UnsupportedAbility",
    "InvalidWorkload",
    "SystemNotFound",
    "NotImplementedYet",
    # operations
    "Op",
    "OpType",
    "NEMESIS",
    "next_process",
    # systems and clients
    "System",
    "SystemSettings",
    "LeaderAware",
    "ClockControl",
    "available_systems",
    "load_system",
    "Client",
    "DefiniteFailure",
    "complete_exceptionally",
    # workloads
    "Workload",
    "ChecksSpec",
    "load_workload",
    "parse_workload",
]
