"""Scenarios: one seed in, a cluster, a client workload and a fault schedule out.

A :class:`Scenario` is a plain value. :func:`draw_scenario` makes one from a seed
and nothing else (``random.Random(seed)``), so ``chaos sim --seed S`` rebuilds it
exactly; the shrinker makes smaller ones by dropping faults and client operations
from a failing scenario, keeping the seed (which also seeds the network and the
nodes' randomness).

Faults use the real nemesis vocabulary: partitions are grudges built by
:mod:`rift_chaos.nemesis.grudge` (halves, random halves, isolate one node, the
majorities ring, bridge, one-way), and a node can be killed (losing its unsynced
writes, the last one maybe torn) and restarted, paused and resumed, clogged (its
messages held up, then delivered all at once: a deposed leader's stale answers
arrive after the cluster moved on) or have its clock jumped. A kill can also be
aimed at a moment the system reports instead of a time (``kill-at``: whoever just
granted a vote, won an election, took over a partition), and a scenario may turn
timing knobs of the system (a short election jitter, for split votes): a forgotten
promise shows only when a node dies right after making it and comes back while the
round it belonged to is still going on. Every fault has a start and an end; all
faults end, and every node is up and healed, at ``fault_end_ms``; then the cluster
gets ``settle_ms`` to recover before the final read.

A system plugs into the simulator with a *harness factory*
(:class:`SimHarnessFactory`): given a scenario, it returns a :class:`SimHarness`
that builds the system's nodes, adds client processes that write the history, and
checks the system's own invariants. ``chaos sim`` finds the factory next to the
System registered in the ``rift.systems`` entry-point group (see
:func:`find_harness_factory`).
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from importlib.metadata import entry_points
from typing import Any, Protocol

from rift_chaos.errors import SystemNotFound
from rift_chaos.nemesis import grudge as shapes
from rift_chaos.sim._network import LinkFaults
from rift_chaos.sim._node import SimSystem
from rift_chaos.sim._simulation import Simulation
from rift_chaos.system import ENTRY_POINT_GROUP

__all__ = [
    "ClientOp",
    "Fault",
    "HARNESS_ATTRIBUTE",
    "InvariantViolation",
    "LeaderAware",
    "RETENTION_SHARE",
    "Scenario",
    "SimHarness",
    "SimHarnessFactory",
    "draw_scenario",
    "find_harness_factory",
]

PARTITION_SHAPES = (
    "halves",
    "random-halves",
    "isolate",
    "isolate-leader",
    "majorities-ring",
    "bridge",
    "one-way",
)
FAULT_KINDS = ("partition", "kill", "pause", "clock", "kill-at", "clog")
#: Moments a system may report (as observations of that kind) for ``kill-at`` faults:
#: ``vote`` - it granted its vote to a candidate in a leader election (the answer has
#: left); ``elected`` - it won an election of its consensus quorum; ``leader`` - it
#: took over as the leader of a partition (shard). A system that never reports a
#: moment is simply never killed at it.
KILL_POINTS = ("vote", "elected", "leader")

#: The share of drawn scenarios that turn on log retention (see :class:`Scenario`).
RETENTION_SHARE = 0.5

#: The attribute (on the System class, or in its module's ``sim`` submodule) naming the
#: simulation harness factory.
HARNESS_ATTRIBUTE = "simulation_system"


class InvariantViolation(AssertionError):
    """A system invariant broke during a simulation; the message says which and where."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """One fault from ``start_ms`` to ``end_ms`` (virtual time).

    ``kind`` is ``partition`` (``grudge`` says who drops whom, ``shape`` how it was
    drawn), ``kill`` (``node`` dies, losing unsynced writes; restarted at the end),
    ``pause`` (SIGSTOP / SIGCONT), ``clock`` (``node``'s clock jumps by
    ``offset_ms``, and back at the end) or ``clog`` (every message to or from
    ``node`` is held up until the end, then arrives at once; the node runs on). With
    ``leader`` set, a kill, a pause, a clog or an ``isolate-leader`` partition hits
    whichever node leads when the fault starts (the harness says, see
    :class:`LeaderAware`); ``node`` is the fallback.

    ``kill-at`` is a kill aimed at moments instead of a time: between ``start_ms``
    and ``end_ms``, every node that reports one of ``points`` (see
    :data:`KILL_POINTS`) is killed right after the event in which it reported it -
    losing whatever it had not synced - and restarted ``down_ms`` later. A short
    ``down_ms`` brings the node back while the round the moment belonged to (an
    election, say) is still going on, which is when forgetting a promise does harm;
    killing voters and winners alike keeps elections coming.
    """

    kind: str
    start_ms: int
    end_ms: int
    node: str | None = None
    shape: str | None = None
    grudge: tuple[tuple[str, tuple[str, ...]], ...] = ()
    offset_ms: int = 0
    leader: bool = False
    points: tuple[str, ...] = ()
    down_ms: int = 0

    def describe(self) -> str:
        if self.kind == "kill-at":
            what = f"kill at {'/'.join(self.points)}, down {self.down_ms}ms,"
        elif self.kind == "partition" and self.leader:
            what = "partition isolate-leader"
        elif self.kind == "partition":
            cut = ", ".join(f"{dst}!{'/'.join(srcs)}" for dst, srcs in self.grudge if srcs)
            what = f"partition {self.shape} [{cut}]"
        elif self.kind == "clock":
            what = f"clock {self.node} {self.offset_ms:+d}ms"
        else:
            what = f"{self.kind} {'the leader' if self.leader else self.node}"
        return f"{what} @{self.start_ms}..{self.end_ms}ms"


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientOp:
    """Client ``process`` starts operation ``f`` (``send`` or ``poll``) at ``at_ms``."""

    at_ms: int
    process: int
    f: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """Everything one simulated run needs; a pure function of ``seed`` when drawn.

    ``settings`` are knobs of the system under test that a scenario may turn; a
    harness honours those it has and ignores the rest. Drawn ones:
    ``election_jitter_ms``, the longest random delay a follower adds to its election
    timeout (the system's own choice when absent); and, in a share of the scenarios
    (:data:`RETENTION_SHARE`), log retention: ``segment_bytes`` and
    ``retention_bytes`` for the topic, ``maintain_interval_ms`` for how often each
    node rolls segments and applies retention (no retention when absent).
    """

    seed: int
    nodes: tuple[str, ...]
    clients: int
    partitions: int
    min_insync_replicas: int
    link: LinkFaults
    ops: tuple[ClientOp, ...]
    faults: tuple[Fault, ...]
    fault_end_ms: int
    settle_ms: int = 3_000
    settings: Mapping[str, int] = field(default_factory=dict)

    @property
    def end_ms(self) -> int:
        return self.fault_end_ms + self.settle_ms

    def without(
        self, *, faults: tuple[Fault, ...] | None = None, ops: tuple[ClientOp, ...] | None = None
    ) -> Scenario:
        """The same scenario with fewer faults or client operations (for shrinking)."""
        return replace(
            self,
            faults=self.faults if faults is None else faults,
            ops=self.ops if ops is None else ops,
        )

    def describe(self) -> list[str]:
        head = (
            f"seed {self.seed}: {len(self.nodes)} nodes, {self.partitions} partition(s) "
            f"rf=3 min.insync={self.min_insync_replicas}, {self.clients} clients, "
            f"{len(self.ops)} ops, latency {self.link.min_latency_ms}-"
            f"{self.link.max_latency_ms}ms loss {self.link.loss:.3f} "
            f"dup {self.link.duplicate:.3f}, faults until {self.fault_end_ms}ms"
        )
        if self.settings:
            head += ", " + ", ".join(f"{k}={v}" for k, v in sorted(self.settings.items()))
        return [head, *(f"  fault {f.describe()}" for f in self.faults)]


def draw_scenario(seed: int, *, fault_window_ms: int | None = None) -> Scenario:
    """The scenario of ``seed``: same seed, same scenario, on every machine."""
    rng = random.Random(f"rift-sim-{seed}")
    size = rng.choice((3, 3, 5))
    nodes = tuple(f"n{i}" for i in range(1, size + 1))
    window = fault_window_ms if fault_window_ms is not None else rng.randrange(4_000, 9_001, 500)
    link = LinkFaults(
        min_latency_ms=1,
        max_latency_ms=rng.choice((2, 5, 10, 20, 50, 120)),  # slow links reorder a lot
        loss=rng.choice((0.0, 0.0, 0.005, 0.02)),
        duplicate=rng.choice((0.0, 0.0, 0.005, 0.02)),
    )
    clients = rng.randint(1, 3)
    ops: list[ClientOp] = []
    for process in range(clients):
        t = rng.randint(1_000, 2_500)  # the cluster needs about a second to form
        while t < window:
            f = "send" if rng.random() < 0.75 else "poll"
            ops.append(ClientOp(at_ms=t, process=process, f=f))
            t += rng.randint(20, 300)
    ops.sort(key=lambda op: (op.at_ms, op.process))
    faults = _draw_faults(rng, nodes, window)
    settings: dict[str, int] = {}
    if rng.random() < 0.5:
        # A follower campaigns after its election timeout plus a random jitter. A short
        # jitter makes candidates collide (split votes, several candidates per term):
        # the contested elections where a lost vote does harm.
        settings["election_jitter_ms"] = rng.randint(20, 150)
    partitions = rng.choice((1, 1, 2))
    # Drawn last, so the rest of a seed's scenario is what it was before retention.
    if rng.random() < RETENTION_SHARE:
        # Tiny segments (one to a few records each) and a size limit of a few of them:
        # segments roll and are deleted all through the run, faults or not.
        segment = rng.choice((150, 300, 600))
        settings["segment_bytes"] = segment
        settings["retention_bytes"] = segment * rng.randint(1, 4)
        settings["maintain_interval_ms"] = rng.choice((25, 100, 400))
    return Scenario(
        seed=seed,
        nodes=nodes,
        clients=clients,
        partitions=partitions,
        min_insync_replicas=2,
        link=link,
        ops=tuple(ops),
        faults=tuple(faults),
        fault_end_ms=window,
        settings=settings,
    )


def _draw_faults(rng: random.Random, nodes: tuple[str, ...], window: int) -> list[Fault]:
    faults: list[Fault] = []
    count = rng.randint(0, 6)
    for _ in range(count):
        kind = rng.choices(FAULT_KINDS, weights=(4, 4, 3, 1, 3, 3))[0]
        if kind == "kill-at":
            # Often armed from boot on: the first election, when every node campaigns
            # at about the same time, is the most contested.
            start = rng.choice((rng.randint(1, 1_000), rng.randint(1, max(2, window - 500))))
            end = min(start + rng.randint(500, 6_000), window)
            chosen = rng.sample(KILL_POINTS, rng.randint(1, len(KILL_POINTS)))
            points = tuple(p for p in KILL_POINTS if p in chosen)
            down = rng.choice((rng.randint(0, 20), rng.randint(0, 300)))
            faults.append(Fault(kind=kind, start_ms=start, end_ms=end, points=points, down_ms=down))
            continue
        start = rng.randint(1_500, max(1_501, window - 500))
        # Short faults hit elections and in-flight writes; long ones outlast timeouts.
        length = rng.choice((rng.randint(20, 400), rng.randint(400, 6_000)))
        end = min(start + length, window)
        if kind == "partition":
            shape = rng.choice(PARTITION_SHAPES)
            if shape == "isolate-leader":
                node = rng.choice(nodes)
                faults.append(
                    Fault(
                        kind=kind, start_ms=start, end_ms=end, shape=shape, node=node, leader=True
                    )
                )
                continue
            g = _shape(shape, list(nodes), rng)
            frozen = tuple((dst, tuple(sorted(srcs))) for dst, srcs in sorted(g.items()))
            faults.append(Fault(kind=kind, start_ms=start, end_ms=end, shape=shape, grudge=frozen))
        elif kind == "clock":
            offset = rng.choice((-1, 1)) * rng.randint(100, 5_000)
            node = rng.choice(nodes)
            faults.append(Fault(kind=kind, start_ms=start, end_ms=end, node=node, offset_ms=offset))
        else:
            node, leader = rng.choice(nodes), rng.random() < 0.5
            faults.append(Fault(kind=kind, start_ms=start, end_ms=end, node=node, leader=leader))
    faults.sort(key=lambda f: (f.start_ms, f.kind, f.node or ""))
    return faults


def _shape(shape: str, nodes: list[str], rng: random.Random) -> shapes.Grudge:
    if shape == "halves":
        return shapes.halves(nodes)
    if shape == "random-halves":
        return shapes.random_halves(nodes, rng)
    if shape == "isolate":
        return shapes.isolate_random(nodes, rng)
    if shape == "majorities-ring":
        return shapes.majorities_ring(nodes, rng)
    if shape == "bridge":
        return shapes.bridge(nodes, rng)
    return shapes.one_way(nodes, senders=[rng.choice(nodes)])


# -- the system's side --------------------------------------------------------------


class SimHarness(Protocol):
    """One system's part of one simulated scenario.

    The runner builds a :class:`Simulation` on ``system``, calls :meth:`install`
    (add client processes, hook observers; they write ``history``), boots it, plays
    the fault schedule, heals, calls :meth:`start_final_read` and runs until
    :attr:`final_read_done` - the final read finished and the system is settled
    enough for its end-of-run invariants (not, say, half-way through moving a
    leader). The harness raises :class:`InvariantViolation` from inside the
    simulation the moment an invariant breaks (it is checked at every step), and
    :meth:`finish` returns what end-of-run invariants found.

    To be killed at its moments (``kill-at`` faults), a system reports them from its
    nodes as observations named as in :data:`KILL_POINTS`.
    """

    system: SimSystem

    def install(self, sim: Simulation, history: Any) -> None: ...

    def start_final_read(self) -> None: ...

    @property
    def final_read_done(self) -> bool: ...

    def finish(self) -> list[str]: ...


class LeaderAware(Protocol):
    """Optional for a :class:`SimHarness`: who leads right now (for leader-targeted faults).

    Returns a node name, or None when no leader is known (the fault then hits its
    fallback node). Must read only the simulation's state, so it is deterministic.
    """

    def leader(self) -> str | None: ...


SimHarnessFactory = Callable[[Scenario], SimHarness]


def find_harness_factory(system: str) -> SimHarnessFactory:
    """The simulation harness of the System registered as ``system`` in ``rift.systems``.

    Looked up, in order: an attribute ``simulation_system`` of the registered object
    (e.g. ``BrokerSystem.simulation_system``); then ``simulation_system`` in the
    submodule ``sim`` of the module that defines it (the entry point
    ``rift_broker.chaos_plugin:BrokerSystem`` gives
    ``rift_broker.chaos_plugin.sim:simulation_system``).
    """
    found = entry_points(group=ENTRY_POINT_GROUP, name=system)
    if not found:
        raise SystemNotFound(f"no system {system!r} in the {ENTRY_POINT_GROUP} entry points")
    (ep,) = found
    try:
        target = ep.load()
    except (ImportError, AttributeError) as exc:
        raise SystemNotFound(f"system {system!r} is registered but cannot load: {exc}") from exc
    factory = getattr(target, HARNESS_ATTRIBUTE, None)
    if factory is None:
        try:
            module = importlib.import_module(f"{ep.module}.sim")
        except ImportError as exc:
            raise SystemNotFound(
                f"system {system!r} has no simulation adapter ({ep.module}.sim: {exc})"
            ) from exc
        factory = getattr(module, HARNESS_ATTRIBUTE, None)
    if factory is None:
        raise SystemNotFound(
            f"system {system!r} has no simulation adapter: define "
            f"{ep.module}.sim:{HARNESS_ATTRIBUTE}"
        )
    result: SimHarnessFactory = factory
    return result
