"""Network partitions as iptables rules inside each node's own network stack.

Theory of operation. At setup every node gets a chain ``RIFT-<runid>`` jumped to
from the top of INPUT by a rule carrying the comment ``rift-<runid>``. A grudge is
applied by flushing that chain on every node and appending, on node ``a``, one
``-s <address of b> -j DROP`` rule (same comment) per node ``b`` that ``a`` drops.
Healing flushes the chain, so it is idempotent and never touches a rule that is not
ours; teardown also removes the jump and the chain. Rules are only ever added
through the :class:`~rift_chaos.remote.Firewall` ability, which on ``netns`` runs
iptables inside the node's namespace, never in the machine's own.

Operations: ``start-partition`` with value ``{"grudge": {node: [nodes]}}`` (from the
generator, see :mod:`rift_chaos.nemesis.grudge`) or ``{"target": "leader"}`` (the
current leader isolated, asked of a LeaderAware system); ``stop-partition``.
"""

from __future__ import annotations

from collections.abc import Sequence

from rift_chaos.errors import ChaosError, UnsupportedAbility
from rift_chaos.nemesis import grudge as grudges
from rift_chaos.nemesis._protocol import NemesisContext, target_nodes
from rift_chaos.op import Op
from rift_chaos.remote import Firewall

__all__ = ["PartitionNemesis", "chain_name", "rule_comment"]

# A jump rule is inserted once per setup; this bounds the loop that removes
# duplicates left by repeated setups of a crashed run.
_MAX_JUMP_DELETES = 16


def chain_name(run_id: str) -> str:
    return f"RIFT-{run_id}"


def rule_comment(run_id: str) -> str:
    return f"rift-{run_id}"


class PartitionNemesis:
    """Applies grudges with iptables; ``fs`` = start-partition, stop-partition."""

    fs = frozenset({"start-partition", "stop-partition"})

    def __init__(self) -> None:
        self._ctx: NemesisContext | None = None
        self._walls: dict[str, Firewall] = {}

    def setup(self, ctx: NemesisContext) -> None:
        self._ctx = ctx
        walls: dict[str, Firewall] = {}
        for node in ctx.cluster.nodes:
            remote = ctx.cluster.remote(node.name)
            if not isinstance(remote, Firewall):
                raise UnsupportedAbility(
                    f"partitions need a backend with a firewall per node; {node.name} has none "
                    "(the local backend shares one network stack; use netns)"
                )
            walls[node.name] = remote
        self._walls = walls
        chain, tag = self._names()
        for wall in walls.values():
            wall.iptables(["-N", chain], check=False)  # exit 1 if it exists: fine
            wall.iptables(["-F", chain])
            jump = ["INPUT", "-m", "comment", "--comment", tag, "-j", chain]
            if not wall.iptables(["-C", *jump], check=False).ok:
                wall.iptables(["-I", "INPUT", "1", *jump[1:]])

    def _names(self) -> tuple[str, str]:
        assert self._ctx is not None, "setup() first"
        run_id = self._ctx.cluster.run_id
        return chain_name(run_id), rule_comment(run_id)

    def invoke(self, op: Op) -> Op:
        ctx = self._ctx
        if ctx is None:
            raise RuntimeError("PartitionNemesis.invoke before setup")
        try:
            if op.f == "start-partition":
                grudge = self._grudge(ctx, op.value)
                self.apply(grudge, time=ctx.now())
                return op.ok(value={**op.value, "grudge": grudges.to_value(grudge)}, time=ctx.now())
            if op.f == "stop-partition":
                self.heal()
                return op.ok(time=ctx.now())
        except ChaosError as exc:
            return op.info(error=str(exc), time=ctx.now())
        raise ValueError(f"PartitionNemesis cannot handle f={op.f!r}")

    def _grudge(self, ctx: NemesisContext, value: object) -> grudges.Grudge:
        if isinstance(value, dict) and "grudge" in value:
            try:
                return grudges.validate(grudges.from_value(value["grudge"]), ctx.node_names)
            except ValueError as exc:
                raise ChaosError(str(exc)) from exc
        (leader,) = target_nodes(ctx, value)
        return grudges.isolate(ctx.node_names, leader)

    def apply(self, grudge: grudges.Grudge, *, time: int) -> None:
        """Replace whatever partition is in force with ``grudge``."""
        assert self._ctx is not None
        chain, tag = self._names()
        hosts = {n.name: n.host for n in self._ctx.cluster.nodes}
        self._flush()
        for node, drops in sorted(grudge.items()):
            for peer in sorted(drops):
                self._walls[node].iptables(
                    ["-A", chain, "-s", f"{hosts[peer]}/32", *_tagged(tag), "-j", "DROP"]
                )
        self._ctx.timeline.end("partition", time=time)
        if any(grudge.values()):
            self._ctx.timeline.start("partition", time=time, value=grudges.to_value(grudge))

    def heal(self) -> None:
        """Remove every partition rule (idempotent)."""
        self._flush()
        if self._ctx is not None:
            self._ctx.timeline.end("partition", time=self._ctx.now())

    def _flush(self) -> None:
        chain, _ = self._names()
        for wall in self._walls.values():
            wall.iptables(["-F", chain], check=False)

    def teardown(self) -> None:
        if self._ctx is None:
            return
        self.heal()
        chain, tag = self._names()
        jump = ["INPUT", "-m", "comment", "--comment", tag, "-j", chain]
        for wall in self._walls.values():
            for _ in range(_MAX_JUMP_DELETES):
                if not wall.iptables(["-D", *jump], check=False).ok:
                    break
            wall.iptables(["-X", chain], check=False)


def _tagged(tag: str) -> Sequence[str]:
    return ("-m", "comment", "--comment", tag)
