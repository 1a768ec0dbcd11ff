"""The deterministic simulator: sans-IO nodes in virtual time under seeded faults.

The same seed gives the same schedule, the same messages in the same order and the
same trace hash, byte for byte, so any failure replays from one line.
"""

from __future__ import annotations

from rift_chaos.sim._network import LinkFaults, SimNetwork
from rift_chaos.sim._node import NodeContext, Observation, Send, SetTimer, SimNode, SimSystem
from rift_chaos.sim._simulation import Simulation

__all__ = [
    "Simulation",
    "SimNode",
    "SimSystem",
    "NodeContext",
    "Send",
    "SetTimer",
    "Observation",
    "SimNetwork",
    "LinkFaults",
]
