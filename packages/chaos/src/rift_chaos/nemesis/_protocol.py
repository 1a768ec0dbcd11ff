"""The Nemesis protocol and the context a nemesis is set up with.

A nemesis turns nemesis operations (``process="nemesis"``) into faults. The runner
calls :meth:`Nemesis.setup` once, then :meth:`Nemesis.invoke` for each scheduled
nemesis operation from one thread, then :meth:`Nemesis.teardown`.

Contract:

- ``fs`` is the set of operation names the nemesis handles; composed nemeses must
  have disjoint ``fs``.
- ``invoke`` returns the completion: ``ok`` with a value saying exactly what was done
  (a resolved grudge, the nodes killed), or ``info`` with an error if the fault may
  have been partly applied. It records each fault's start and end on the context's
  :class:`~rift_chaos.nemesis.timeline.Timeline`. It raises only for bugs, never for
  a node that misbehaves.
- ``teardown`` heals every fault this nemesis may have caused (partitions removed,
  killed nodes restarted, paused nodes resumed, clocks reset). It is idempotent and
  safe after a failed ``setup``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from rift_chaos.errors import ChaosError, UnsupportedAbility
from rift_chaos.nemesis.timeline import Timeline
from rift_chaos.op import Op
from rift_chaos.remote import Cluster
from rift_chaos.system import LeaderAware, System

__all__ = ["Nemesis", "NemesisContext", "target_nodes"]


@dataclass(frozen=True, slots=True, kw_only=True)
class NemesisContext:
    """What a nemesis acts on. ``now`` returns ns since the start of the run."""

    cluster: Cluster
    timeline: Timeline
    now: Callable[[], int]
    system: System | None = None

    @property
    def node_names(self) -> list[str]:
        return [n.name for n in self.cluster.nodes]

    def require_system(self, why: str) -> System:
        if self.system is None:
            raise UnsupportedAbility(f"{why} needs a System; this run has none")
        return self.system


class Nemesis(Protocol):
    """Injects and heals faults. See the module docstring for the contract."""

    @property
    def fs(self) -> frozenset[str]: ...

    def setup(self, ctx: NemesisContext) -> None: ...

    def invoke(self, op: Op) -> Op: ...

    def teardown(self) -> None: ...


def target_nodes(ctx: NemesisContext, value: object) -> list[str]:
    """The nodes an operation's value names.

    ``{"nodes": [...]}`` names them; ``{"target": "leader"}`` asks a
    :class:`~rift_chaos.system.LeaderAware` system for the leader of
    ``(value["topic"], value["partition"])``, or of its first partition if not given.
    """
    if not isinstance(value, dict):
        raise ChaosError(f"nemesis value must be a mapping, got {value!r}")
    known = ctx.node_names
    if "nodes" in value:
        nodes = list(value["nodes"])
        unknown = [n for n in nodes if n not in known]
        if unknown:
            raise ChaosError(f"nemesis names unknown node(s): {', '.join(unknown)}")
        return nodes
    if value.get("target") == "leader":
        system = ctx.require_system("targeting the leader")
        if not isinstance(system, LeaderAware):
            raise UnsupportedAbility("targeting the leader needs a LeaderAware system")
        leaders = system.leaders(ctx.cluster.nodes)
        key = (value.get("topic"), value.get("partition"))
        if None in key:
            if not leaders:
                raise ChaosError("no partition has a known leader")
            key = min(leaders)
        leader = leaders.get(key)  # type: ignore[arg-type]
        if leader is None:
            raise ChaosError(f"no known leader for {key}")
        return [leader]
    raise ChaosError(f"nemesis value needs 'nodes' or 'target': {value!r}")
