"""The Client protocol: abstract operations in, completions out.

A System hands out one Client per worker (:meth:`rift_chaos.system.System.client`).
The runner calls :meth:`Client.open` with the node the worker talks to, then
:meth:`Client.invoke` once per operation, from one thread at a time, and finally
:meth:`Client.close`.

Operations (``f``) a log/broker client understands: ``send`` (value: a unique int
to append), ``poll`` (value: ``None``; completes with what was read), ``assign``,
``commit``, and a final ``read`` (everything from the beginning). A client may
support a subset; an unknown ``f`` is a ``fail`` with an error saying so.

Completion rule, the one that keeps verdicts honest: ``ok`` only when the system
confirmed the effect; ``fail`` only when it certainly did not happen (a definite
error reply, a request refused before it was sent); ``info`` for every other
outcome — a timeout, a dropped connection, any unexpected exception. A timeout is
never ``fail``. :func:`complete_exceptionally` applies that rule to an exception.
"""

from __future__ import annotations

from typing import Protocol

from rift_chaos.op import Op
from rift_chaos.remote import Node

__all__ = ["Client", "DefiniteFailure", "complete_exceptionally"]


class DefiniteFailure(Exception):
    """Raise from a client to say the operation certainly did not take effect."""


class Client(Protocol):
    """One worker's connection to the system under test."""

    def open(self, node: Node, *, timeout: float) -> None:
        """Connect to ``node``; raise if that is impossible (the runner retries later)."""
        ...

    def invoke(self, op: Op) -> Op:
        """Perform the invocation ``op`` and return its completion (``op.ok(...)`` etc.).

        Must not raise for failures of the operation itself; the runner turns any
        exception that escapes into an ``info`` completion.
        """
        ...

    def close(self) -> None:
        """Release the connection; idempotent."""
        ...


def complete_exceptionally(op: Op, exc: BaseException, *, time: int | None = None) -> Op:
    """The completion of ``op`` after ``exc``: ``fail`` only for a DefiniteFailure."""
    error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, DefiniteFailure):
        return op.fail(error=error, time=time)
    return op.info(error=error, time=time)
