"""The System protocol: install, configure, run and break the system under test.

A System is found by name in the ``rift.systems`` entry-point group, e.g. the broker
package declares::

    [project.entry-points."rift.systems"]
    rift-broker = "rift_broker.chaos_plugin:BrokerSystem"

The entry point is a factory (usually the class) called with keyword argument
``settings`` (:class:`SystemSettings`). Every method acts on one node through its
Remote, so the same System runs on every backend; files go under
``remote.workdir``, ports are shifted by ``remote.node.port_offset``.

Contract:

- ``install`` puts what the node needs in place (idempotent).
- ``configure`` writes the node's configuration for the cluster ``nodes``.
- ``start`` starts the node's process(es) and returns without waiting for readiness;
  starting a running node is a no-op. ``wait_ready`` blocks until the node serves
  requests or raises :class:`~rift_chaos.errors.ChaosError` after ``timeout``.
- ``stop`` stops gracefully; ``kill`` is SIGKILL (nothing flushed); ``pause`` and
  ``resume`` are SIGSTOP and SIGCONT. None of them fail when the process is already
  in the requested state.
- ``collect`` copies logs and data files into ``dest`` and returns the paths.
- ``client`` returns a new, unopened :class:`~rift_chaos.client.Client`.

Optional abilities are separate protocols: :class:`ClusterSetup` (one-time set-up
once every node serves, such as creating the topic), :class:`LeaderAware` (report the current
leader of each partition, so a nemesis can isolate or kill it) and
:class:`ClockControl` (shift a node's clock, e.g. through libfaketime, see
:mod:`rift_chaos.nemesis.clock`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from rift_chaos.client import Client
from rift_chaos.errors import SystemNotFound
from rift_chaos.remote import Node, Remote

__all__ = [
    "ENTRY_POINT_GROUP",
    "ClockControl",
    "ClusterSetup",
    "Observable",
    "LeaderAware",
    "System",
    "SystemFactory",
    "SystemSettings",
    "available_systems",
    "load_system",
]

ENTRY_POINT_GROUP = "rift.systems"

ACKS = ("all", "1", "0")


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemSettings:
    """What a workload asks of the system under test.

    ``options`` holds system-specific settings the toolkit passes through untouched.
    """

    name: str = "rift-broker"
    replication_factor: int = 3
    min_insync_replicas: int = 2
    acks: str = "all"
    idempotence: bool = True
    partitions: int = 1
    topic: str = "rift"
    options: Mapping[str, Any] = field(default_factory=dict)


class System(Protocol):
    """How to run the system under test on one node. See the module docstring."""

    def install(self, remote: Remote) -> None: ...

    def configure(self, remote: Remote, *, nodes: Sequence[Node]) -> None: ...

    def start(self, remote: Remote) -> None: ...

    def stop(self, remote: Remote) -> None: ...

    def kill(self, remote: Remote) -> None: ...

    def pause(self, remote: Remote) -> None: ...

    def resume(self, remote: Remote) -> None: ...

    def wait_ready(self, remote: Remote, *, timeout: float) -> None: ...

    def collect(self, remote: Remote, dest: Path) -> list[Path]: ...

    def client(self) -> Client: ...


@runtime_checkable
class ClusterSetup(Protocol):
    """Ability: one-time set-up of the whole cluster once every node serves.

    Called by the runner from the control process after ``wait_ready`` succeeded on
    every node, e.g. to create the workload's topic with its replication factor.
    Raises :class:`~rift_chaos.errors.ChaosError` if it cannot finish in ``timeout``.
    """

    def setup_cluster(self, nodes: Sequence[Node], *, timeout: float) -> None: ...


@runtime_checkable
class Observable(Protocol):
    """Ability: facts the system recorded about itself on one node, in order.

    Each is ``{"f": "leader" | "high-watermark", "value": {...}}`` in the checker's
    observation schema (``leader``: topic, partition, epoch, node;
    ``high-watermark``: topic, partition, offset). Read after the run, from the
    node's logs; a node that recorded nothing returns an empty list. An optional
    ``"time_ms"`` lets the runner merge the nodes' facts in the order they happened;
    it must come from one clock for all nodes, and not one a clock fault moves (the
    monotonic clock, where nodes share a kernel).
    """

    def observations(self, remote: Remote) -> list[Mapping[str, Any]]: ...


@runtime_checkable
class LeaderAware(Protocol):
    """Ability: the current leader of each partition, asked from the control process.

    Returns ``{(topic, partition): node name}``; partitions without a known leader
    are left out. Must not raise for an unreachable cluster: return what is known.
    """

    def leaders(self, nodes: Sequence[Node]) -> Mapping[tuple[str, int], str]: ...


@runtime_checkable
class ClockControl(Protocol):
    """Ability: shift the wall clock of the system's process on one node.

    ``offset`` is in seconds (may be negative); ``0`` restores the real clock. Takes
    effect without a restart.
    """

    def set_clock_offset(self, remote: Remote, offset: float) -> None: ...


SystemFactory = Callable[..., System]


def available_systems() -> dict[str, SystemFactory]:
    """Every System registered in the ``rift.systems`` entry-point group, loaded lazily."""
    found: dict[str, SystemFactory] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found[ep.name] = _lazy(ep.name)
    return found


def _lazy(name: str) -> SystemFactory:
    def factory(**kwargs: Any) -> System:
        (ep,) = entry_points(group=ENTRY_POINT_GROUP, name=name)
        try:
            loaded: SystemFactory = ep.load()
        except (ImportError, AttributeError) as exc:
            raise SystemNotFound(f"system {name!r} is registered but cannot load: {exc}") from exc
        return loaded(**kwargs)

    return factory


def load_system(
    settings: SystemSettings, *, registry: Mapping[str, SystemFactory] | None = None
) -> System:
    """The System named ``settings.name``, built with ``settings``.

    ``registry`` replaces the entry points (tests register doubles this way).
    """
    systems = dict(registry) if registry is not None else available_systems()
    factory = systems.get(settings.name)
    if factory is None:
        known = ", ".join(sorted(systems)) or "none"
        raise SystemNotFound(
            f"no system {settings.name!r} in entry points group {ENTRY_POINT_GROUP!r} "
            f"(installed: {known}); install its package"
        )
    return factory(settings=settings)
