"""Clock faults, and the libfaketime plumbing a System uses to make them possible.

A System that supports clock faults starts its process with :func:`faketime_env`
in its environment: libfaketime (Debian package ``faketime``) is preloaded and
re-reads an offset file (``+12.5s``, ``-3s``) on every clock call, so
:func:`write_offset` shifts the clock of a running process without a restart. By
default only the wall clock moves (``FAKETIME_DONT_FAKE_MONOTONIC=1``): timeouts
measured on the monotonic clock keep working while timestamps, retention and
anything else on the wall clock see the skew, which is what real NTP faults do.

The nemesis itself goes through the System's :class:`~rift_chaos.system.ClockControl`
ability. Operations: ``clock-offset`` with ``{"offsets": {node: seconds}}``;
``clock-reset`` with ``{"nodes": [...]}`` or ``None`` for every skewed node.
"""

from __future__ import annotations

import glob
from collections.abc import Mapping

from rift_chaos.errors import BackendUnavailable, ChaosError, UnsupportedAbility
from rift_chaos.nemesis._protocol import NemesisContext
from rift_chaos.op import Op
from rift_chaos.remote import Remote
from rift_chaos.system import ClockControl

__all__ = ["ClockNemesis", "faketime_env", "find_libfaketime", "offset_text", "write_offset"]

_LIB_GLOBS = (
    "/usr/lib/*/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
)


def find_libfaketime() -> str:
    """The path of libfaketime.so.1, or BackendUnavailable saying how to install it."""
    for pattern in _LIB_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    raise BackendUnavailable("clock faults need libfaketime (apt-get install faketime)")


def offset_text(offset: float) -> str:
    """libfaketime's relative-offset syntax: ``+1.5s``, ``-3s``, ``+0s``."""
    return f"{offset:+g}s\n"


def faketime_env(
    offset_file: str, *, library: str | None = None, fake_monotonic: bool = False
) -> dict[str, str]:
    """Environment that runs a process under libfaketime driven by ``offset_file``."""
    env = {
        "LD_PRELOAD": library or find_libfaketime(),
        "FAKETIME_TIMESTAMP_FILE": offset_file,
        "FAKETIME_NO_CACHE": "1",
    }
    if not fake_monotonic:
        env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"
    return env


def write_offset(remote: Remote, offset_file: str, offset: float) -> None:
    """Shift the clock of processes started with :func:`faketime_env` by ``offset`` s."""
    remote.write_file(offset_file, offset_text(offset).encode())


class ClockNemesis:
    """``clock-offset`` / ``clock-reset`` through the System's ClockControl ability."""

    fs = frozenset({"clock-offset", "clock-reset"})

    def __init__(self) -> None:
        self._ctx: NemesisContext | None = None
        self._control: ClockControl | None = None
        self._skewed: set[str] = set()

    def setup(self, ctx: NemesisContext) -> None:
        system = ctx.require_system("the clock nemesis")
        if not isinstance(system, ClockControl):
            raise UnsupportedAbility("clock faults need a system with the ClockControl ability")
        self._ctx, self._control = ctx, system

    def invoke(self, op: Op) -> Op:
        ctx = self._ctx
        if ctx is None:
            raise RuntimeError("ClockNemesis.invoke before setup")
        try:
            if op.f == "clock-offset":
                offsets = _offsets(op.value, ctx.node_names)
                self._set(offsets)
                return op.ok(time=ctx.now())
            if op.f == "clock-reset":
                nodes = sorted(self._skewed) if op.value is None else list(op.value["nodes"])
                self._set(dict.fromkeys(nodes, 0.0))
                return op.ok(value={"nodes": nodes}, time=ctx.now())
        except ChaosError as exc:
            return op.info(error=str(exc), time=ctx.now())
        raise ValueError(f"ClockNemesis cannot handle f={op.f!r}")

    def _set(self, offsets: Mapping[str, float]) -> None:
        ctx, control = self._ctx, self._control
        assert ctx is not None
        assert control is not None
        for node, offset in sorted(offsets.items()):
            control.set_clock_offset(ctx.cluster.remote(node), offset)
            if offset:
                self._skewed.add(node)
                ctx.timeline.start("clock", time=ctx.now(), node=node, value={"offset": offset})
            else:
                self._skewed.discard(node)
                ctx.timeline.end("clock", time=ctx.now(), node=node)

    def teardown(self) -> None:
        if self._ctx is not None and self._skewed:
            self._set(dict.fromkeys(sorted(self._skewed), 0.0))


def _offsets(value: object, nodes: list[str]) -> dict[str, float]:
    if not isinstance(value, dict) or not isinstance(value.get("offsets"), dict):
        raise ChaosError(f"clock-offset needs {{'offsets': {{node: seconds}}}}, got {value!r}")
    out = {}
    for node, offset in value["offsets"].items():
        if node not in nodes:
            raise ChaosError(f"clock-offset names unknown node {node!r}")
        out[node] = float(offset)
    return out
