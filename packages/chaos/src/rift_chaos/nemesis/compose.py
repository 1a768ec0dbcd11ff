"""Composition: one nemesis made of several, each handling its own operations."""

from __future__ import annotations

from collections.abc import Sequence

from rift_chaos.errors import ChaosError
from rift_chaos.nemesis._protocol import Nemesis, NemesisContext
from rift_chaos.op import Op

__all__ = ["ComposedNemesis", "NoopNemesis"]


class NoopNemesis:
    """Handles nothing; for workloads without faults."""

    fs: frozenset[str] = frozenset()

    def setup(self, ctx: NemesisContext) -> None:
        pass

    def invoke(self, op: Op) -> Op:
        raise ValueError(f"NoopNemesis cannot handle f={op.f!r}")

    def teardown(self) -> None:
        pass


class ComposedNemesis:
    """Routes each operation to the one nemesis whose ``fs`` contains its ``f``.

    Setup runs in order; if one fails, those already set up are torn down. Teardown
    runs in reverse order and tears down every part even if one fails, then raises
    the first error.
    """

    def __init__(self, nemeses: Sequence[Nemesis]) -> None:
        self._parts = list(nemeses)
        self._route: dict[str, Nemesis] = {}
        for part in self._parts:
            clash = part.fs & self._route.keys()
            if clash:
                raise ValueError(f"nemeses overlap on {', '.join(sorted(clash))}")
            self._route.update(dict.fromkeys(part.fs, part))
        self._ready: list[Nemesis] = []

    @property
    def fs(self) -> frozenset[str]:
        return frozenset(self._route)

    def setup(self, ctx: NemesisContext) -> None:
        for part in self._parts:
            try:
                part.setup(ctx)
            except BaseException:
                self.teardown()
                raise
            self._ready.append(part)

    def invoke(self, op: Op) -> Op:
        part = self._route.get(op.f)
        if part is None:
            raise ValueError(f"no nemesis handles f={op.f!r}")
        return part.invoke(op)

    def teardown(self) -> None:
        first: BaseException | None = None
        for part in reversed(self._ready):
            try:
                part.teardown()
            except ChaosError as exc:
                first = first or exc
        self._ready.clear()
        if first is not None:
            raise first
