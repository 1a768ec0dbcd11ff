"""The runner: set up, drive clients and faults, heal, read back, tear down, judge, store."""

from __future__ import annotations

from rift_chaos.runner._run import Runner, RunOutcome, build_nemesis
from rift_chaos.runner._store import RunStore

__all__ = ["Runner", "RunOutcome", "RunStore", "build_nemesis"]
