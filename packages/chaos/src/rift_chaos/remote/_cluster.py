"""What every backend's :class:`~rift_chaos.remote.Cluster` does the same way.

A backend's cluster derives from :class:`ClusterBase`: it gets its run id (the one
given, validated, or a new one), answers :attr:`~ClusterBase.run_id`,
:attr:`~ClusterBase.nodes` and :meth:`~ClusterBase.remote` from ``_nodes`` and
``_remotes``, and is a context manager around its own ``setup`` and ``teardown``.
It fills ``_nodes`` and ``_remotes`` itself: at once, or in ``setup`` where the node
addresses are only known then (docker).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Generic, Self, TypeVar

from rift_chaos.remote._protocol import Node
from rift_chaos.remote._runid import new_run_id, validate_run_id

__all__ = ["ClusterBase"]

R = TypeVar("R")


class ClusterBase(ABC, Generic[R]):
    """The nodes of one run and their remotes of type ``R`` (see the module doc)."""

    def __init__(self, *, run_id: str | None) -> None:
        self._run_id = validate_run_id(run_id) if run_id else new_run_id()
        self._nodes: tuple[Node, ...] = ()
        self._remotes: dict[str, R] = {}

    @property
    def run_id(self) -> str:
        return self._run_id

    @property
    def nodes(self) -> tuple[Node, ...]:
        return self._nodes

    def remote(self, node: str) -> R:
        try:
            return self._remotes[node]
        except KeyError:
            raise KeyError(f"no node {node!r} in run {self._run_id}") from None

    @abstractmethod
    def setup(self) -> None: ...

    @abstractmethod
    def teardown(self) -> None: ...

    def __enter__(self) -> Self:
        self.setup()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.teardown()
