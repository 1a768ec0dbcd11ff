"""Nemeses: faults injected into a running cluster, and healed.

Partitions (grudges applied with iptables inside each node), kill -9 and restart,
pause and resume, clock offsets, and their composition. Every fault's start and end
is recorded on a :class:`Timeline`.
"""

from __future__ import annotations

from rift_chaos.nemesis import grudge
from rift_chaos.nemesis._protocol import Nemesis, NemesisContext, target_nodes
from rift_chaos.nemesis.clock import ClockNemesis, faketime_env, write_offset
from rift_chaos.nemesis.compose import ComposedNemesis, NoopNemesis
from rift_chaos.nemesis.partition import PartitionNemesis, chain_name, rule_comment
from rift_chaos.nemesis.process import KillNemesis, PauseNemesis
from rift_chaos.nemesis.timeline import FaultEvent, FaultWindow, Timeline

__all__ = [
    "Nemesis",
    "NemesisContext",
    "target_nodes",
    "Timeline",
    "FaultEvent",
    "FaultWindow",
    "grudge",
    "PartitionNemesis",
    "chain_name",
    "rule_comment",
    "KillNemesis",
    "PauseNemesis",
    "ClockNemesis",
    "faketime_env",
    "write_offset",
    "ComposedNemesis",
    "NoopNemesis",
]
