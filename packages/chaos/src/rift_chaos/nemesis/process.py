"""Process faults through the System: kill -9 and restart, pause and resume.

``kill`` / ``pause`` take ``{"nodes": [...]}`` or ``{"target": "leader"}``;
``restart`` / ``resume`` take ``{"nodes": [...]}`` or ``None`` for every node this
nemesis has killed or paused. Teardown restarts and resumes whatever is still
down, so the final read of a run sees a whole cluster.
"""

from __future__ import annotations

from collections.abc import Callable

from rift_chaos.errors import ChaosError
from rift_chaos.nemesis._protocol import NemesisContext, target_nodes
from rift_chaos.op import Op
from rift_chaos.remote import Remote
from rift_chaos.system import System

__all__ = ["KillNemesis", "PauseNemesis"]

_Action = Callable[[System, Remote], None]


class _ProcessFault:
    """A fault that puts nodes into a state (``kind``) and brings them back."""

    kind: str
    start_f: str
    end_f: str

    def __init__(self) -> None:
        self._ctx: NemesisContext | None = None
        self._faulted: set[str] = set()

    @property
    def fs(self) -> frozenset[str]:
        return frozenset({self.start_f, self.end_f})

    def _begin(self, system: System, remote: Remote) -> None:
        raise NotImplementedError

    def _finish(self, system: System, remote: Remote) -> None:
        raise NotImplementedError

    def setup(self, ctx: NemesisContext) -> None:
        ctx.require_system(f"the {self.kind} nemesis")
        self._ctx = ctx

    def invoke(self, op: Op) -> Op:
        ctx = self._ctx
        if ctx is None:
            raise RuntimeError(f"{type(self).__name__}.invoke before setup")
        if op.f not in self.fs:
            raise ValueError(f"{type(self).__name__} cannot handle f={op.f!r}")
        try:
            if op.f == self.start_f:
                nodes = target_nodes(ctx, op.value)
                self._apply(nodes, starting=True)
            else:
                nodes = sorted(self._faulted) if op.value is None else target_nodes(ctx, op.value)
                self._apply(nodes, starting=False)
        except ChaosError as exc:
            return op.info(error=str(exc), time=ctx.now())
        return op.ok(value={"nodes": nodes}, time=ctx.now())

    def _apply(self, nodes: list[str], *, starting: bool) -> None:
        ctx = self._ctx
        assert ctx is not None
        system = ctx.require_system(f"the {self.kind} nemesis")
        errors = []
        for node in nodes:
            try:
                if starting:
                    self._begin(system, ctx.cluster.remote(node))
                    self._faulted.add(node)
                    ctx.timeline.start(self.kind, time=ctx.now(), node=node)
                else:
                    self._finish(system, ctx.cluster.remote(node))
                    self._faulted.discard(node)
                    ctx.timeline.end(self.kind, time=ctx.now(), node=node)
            except ChaosError as exc:
                errors.append(f"{node}: {exc}")
        if errors:
            raise ChaosError("; ".join(errors))

    def teardown(self) -> None:
        if self._ctx is not None and self._faulted:
            self._apply(sorted(self._faulted), starting=False)


class KillNemesis(_ProcessFault):
    """``kill`` (SIGKILL through System.kill) and ``restart`` (System.start)."""

    kind = "kill"
    start_f = "kill"
    end_f = "restart"

    def _begin(self, system: System, remote: Remote) -> None:
        system.kill(remote)

    def _finish(self, system: System, remote: Remote) -> None:
        system.start(remote)


class PauseNemesis(_ProcessFault):
    """``pause`` (SIGSTOP through System.pause) and ``resume`` (System.resume)."""

    kind = "pause"
    start_f = "pause"
    end_f = "resume"

    def _begin(self, system: System, remote: Remote) -> None:
        system.pause(remote)

    def _finish(self, system: System, remote: Remote) -> None:
        system.resume(remote)
