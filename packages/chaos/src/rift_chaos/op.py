"""Operations: the values clients, nemeses and generators exchange.

An operation is first an *invocation* (``type="invoke"``) and then a *completion*
with the same ``f`` and ``process``: ``ok`` (it happened), ``fail`` (it certainly
did not happen) or ``info`` (unknown: a timeout, a dropped connection, a crash).
A timeout is never ``fail``: the write may have landed.

``process`` is an ``int`` for client workers and the string ``"nemesis"`` for the
nemesis. Following Jepsen, a worker whose operation completed ``info`` continues
under a fresh process id (:func:`next_process`), because its earlier operation may
still take effect concurrently with its next one.

``time`` is nanoseconds since the start of the run (virtual time in schedules and
simulations, monotonic time in real runs). ``value`` is JSON-like data.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = ["NEMESIS", "Op", "OpType", "next_process"]

NEMESIS = "nemesis"


class OpType(StrEnum):
    INVOKE = "invoke"
    OK = "ok"
    FAIL = "fail"
    INFO = "info"


@dataclass(frozen=True, slots=True, kw_only=True)
class Op:
    type: OpType
    f: str
    process: int | str
    value: Any = None
    time: int = 0
    node: str | None = None
    error: str | None = None

    def ok(self, *, value: Any = None, time: int | None = None) -> Op:
        """This invocation's completion as ``ok``; ``value`` replaces the invoked one if given."""
        return self._complete(OpType.OK, value=value, time=time, error=None)

    def fail(self, *, error: str, value: Any = None, time: int | None = None) -> Op:
        """This invocation's completion as ``fail``: it certainly did not happen."""
        return self._complete(OpType.FAIL, value=value, time=time, error=error)

    def info(self, *, error: str, value: Any = None, time: int | None = None) -> Op:
        """This invocation's completion as ``info``: the outcome is unknown."""
        return self._complete(OpType.INFO, value=value, time=time, error=error)

    def _complete(self, type_: OpType, *, value: Any, time: int | None, error: str | None) -> Op:
        if self.type is not OpType.INVOKE:
            raise ValueError(f"only an invocation can be completed, not a {self.type} op")
        return dataclasses.replace(
            self,
            type=type_,
            value=self.value if value is None else value,
            time=self.time if time is None else time,
            error=error,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; ``None`` fields are left out."""
        out: dict[str, Any] = {"type": str(self.type), "f": self.f, "process": self.process}
        for key in ("value", "time", "node", "error"):
            item = getattr(self, key)
            if item is not None:
                out[key] = item
        return out


def next_process(process: int, *, concurrency: int) -> int:
    """The process id a worker continues under after an ``info`` completion."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    return process + concurrency
