"""The simulation driver: one event queue, virtual time, seeded everything.

Theory of operation
-------------------
The world is a priority queue of events ordered by (virtual time, sequence number).
Popping an event advances the clock to its time and hands it to its node: a start,
a message delivery or a timer. Whatever the node asked for through its context is
then turned into new events: each message gets latencies from the network (zero,
one or two copies), each timer an expiry. Timers are re-armable: only the latest
arming of a (node, name) pair fires. Nothing happens between events, so virtual time
jumps from one to the next — hours of simulated time take milliseconds.

Faults act on this world directly:

- kill: the node's incarnation number goes up, so its pending timers are stale; its
  disk loses unsynced writes (:meth:`SimSystem.crash_disk`); messages to it are
  dropped until it restarts. restart: a fresh process from the system's factory.
- pause: events for the node are held back (as a SIGSTOPped process's socket buffers
  and timers are) and replayed, in order, on resume.
- clog: messages to or from the node are held back when they arrive (the node
  itself runs on: its timers fire, it sends) and delivered, in order, on unclog -
  a link so congested that everything it carries arrives late, all at once.
- clock: a per-node offset added to ``now_ms`` the node sees.
- partitions: the network's grudge.

Every event that happens is appended to the trace, and the trace's running SHA-256
is the run's fingerprint: the same seed must give the same hash, byte for byte.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rift_chaos.sim._network import LinkFaults, SimNetwork
from rift_chaos.sim._node import NodeContext, Observation, Send, SetTimer, SimNode, SimSystem


@dataclass(slots=True)
class _Event:
    time_ms: int
    seq: int
    kind: str  # start | deliver | timer | call
    node: str
    incarnation: int
    payload: Any


@dataclass(slots=True)
class _NodeState:
    node: SimNode | None = None
    incarnation: int = 0
    up: bool = False
    paused: bool = False
    held: list[_Event] = field(default_factory=list)
    clock_offset_ms: int = 0
    timers: dict[str, int] = field(default_factory=dict)  # name -> seq of latest arming


class Simulation:
    """Runs a :class:`SimSystem` (plus client nodes) in virtual time under one seed."""

    def __init__(
        self,
        *,
        system: SimSystem,
        nodes: list[str],
        seed: int,
        faults: LinkFaults | None = None,
        trace: bool = False,
    ) -> None:
        if len(set(nodes)) != len(nodes):
            raise ValueError(f"node names must be unique: {nodes}")
        self.seed = seed
        self.system = system
        self.now_ms = 0
        self._rng = random.Random(seed)
        self.network = SimNetwork(rng=random.Random(self._rng.getrandbits(64)), faults=faults)
        # (time, seq, event): tuples compare in C, and seq is unique, so the event
        # itself is never compared.
        self._queue: list[tuple[int, int, _Event]] = []
        self._seq = 0
        self._nodes: dict[str, _NodeState] = {n: _NodeState() for n in nodes}
        self._clogged: set[str] = set()
        self._clog_held: list[_Event] = []  # deliveries to or from a clogged node
        self._node_rng: dict[str, random.Random] = {
            n: random.Random(self._rng.getrandbits(64)) for n in nodes
        }
        self._hash = hashlib.sha256()
        self._keep_trace = trace
        self.trace: list[str] = []
        self.observations: list[tuple[int, Observation]] = []
        self.observers: list[Callable[[int, Observation], None]] = []
        self.steps = 0
        self.messages_sent = 0

    # -- membership -----------------------------------------------------------

    def add_node(self, name: str, node: SimNode) -> None:
        """Add a node that the system does not build (a client process) and start it."""
        if name in self._nodes:
            raise ValueError(f"node {name!r} already exists")
        self._nodes[name] = _NodeState(node=node)
        self._node_rng[name] = random.Random(self._rng.getrandbits(64))
        self._push("start", name, 0, None, incarnation=0)

    def boot(self) -> None:
        """Start every system node at the current time."""
        for name, state in self._nodes.items():
            if state.node is None:
                state.node = self.system.create(name)
                self._push("start", name, 0, None, incarnation=state.incarnation)

    def node(self, name: str) -> SimNode:
        state = self._nodes[name]
        if state.node is None:
            raise KeyError(f"node {name!r} is not running")
        return state.node

    def is_up(self, name: str) -> bool:
        return self._nodes[name].up

    @property
    def names(self) -> list[str]:
        return list(self._nodes)

    # -- faults ---------------------------------------------------------------

    def kill(self, name: str) -> None:
        state = self._nodes[name]
        state.incarnation += 1
        state.up = False
        state.paused = False
        state.held.clear()
        state.timers.clear()
        state.node = None
        self.system.crash_disk(name, self._node_rng[name])
        self._record(f"kill {name}")

    def restart(self, name: str) -> None:
        state = self._nodes[name]
        if state.node is not None:
            return
        state.node = self.system.create(name)
        self._record(f"restart {name}")
        self._push("start", name, 0, None, incarnation=state.incarnation)

    def pause(self, name: str) -> None:
        self._nodes[name].paused = True
        self._record(f"pause {name}")

    def resume(self, name: str) -> None:
        state = self._nodes[name]
        if not state.paused:
            return
        state.paused = False
        self._record(f"resume {name}")
        held, state.held = state.held, []
        for event in held:  # replay now, in their original order
            self._push(event.kind, event.node, 0, event.payload, incarnation=event.incarnation)

    def clog(self, name: str) -> None:
        self._clogged.add(name)
        self._record(f"clog {name}")

    def unclog(self, name: str) -> None:
        if name not in self._clogged:
            return
        self._clogged.discard(name)
        self._record(f"unclog {name}")
        held, self._clog_held = self._clog_held, []
        for event in held:  # deliver now, in their original order, unless still clogged
            if event.payload[0] in self._clogged or event.node in self._clogged:
                self._clog_held.append(event)
            else:
                self._push("deliver", event.node, 0, event.payload, incarnation=event.incarnation)

    def set_clock_offset(self, name: str, offset_ms: int) -> None:
        self._nodes[name].clock_offset_ms = offset_ms
        self._record(f"clock {name} {offset_ms:+d}ms")

    def partition(self, grudge: Mapping[str, frozenset[str] | set[str]]) -> None:
        self.network.set_grudge(grudge)
        shown = {k: sorted(v) for k, v in sorted(self.network.grudge.items())}
        self._record(f"partition {shown}")

    def heal(self) -> None:
        self.network.heal()
        self._record("heal")

    def call_at(self, time_ms: int, action: Callable[[], None], *, label: str) -> None:
        """Run ``action`` (a fault, a check) at virtual time ``time_ms``."""
        self._push("call", label, max(0, time_ms - self.now_ms), action, incarnation=0)

    # -- running --------------------------------------------------------------

    def run(self, *, until_ms: int, max_steps: int = 10_000_000) -> None:
        """Process events until virtual time passes ``until_ms`` or nothing is left."""
        while self._queue and self.steps < max_steps:
            if self._queue[0][0] > until_ms:
                break
            event = heapq.heappop(self._queue)[2]
            self.now_ms = event.time_ms
            self._dispatch(event)
        self.now_ms = max(self.now_ms, until_ms)

    @property
    def trace_hash(self) -> str:
        return self._hash.hexdigest()

    # -- internals ------------------------------------------------------------

    def _push(self, kind: str, node: str, delay_ms: int, payload: Any, *, incarnation: int) -> int:
        self._seq += 1
        event = _Event(self.now_ms + delay_ms, self._seq, kind, node, incarnation, payload)
        heapq.heappush(self._queue, (event.time_ms, event.seq, event))
        return self._seq

    def _record(self, line: str, detail: Callable[[], str] | None = None) -> None:
        # The fingerprint covers every event's time, kind, nodes and message type;
        # the readable trace adds the message itself when asked for (it costs a repr).
        text = f"{self.now_ms} {line}"
        self._hash.update(text.encode())
        self._hash.update(b"\n")
        if self._keep_trace:
            self.trace.append(text if detail is None else f"{text} {detail()}")

    def _dispatch(self, event: _Event) -> None:
        self.steps += 1
        if event.kind == "call":
            self._record(f"call {event.node}")
            event.payload()
            return
        state = self._nodes[event.node]
        if event.incarnation != state.incarnation or state.node is None:
            return  # for a process that has since died
        if state.paused:
            state.held.append(event)
            return
        node = state.node
        ctx = NodeContext(
            name=event.node,
            now_ms=self.now_ms + state.clock_offset_ms,
            random=self._node_rng[event.node],
        )
        if event.kind == "start":
            state.up = True
            self._record(f"start {event.node}")
            node.start(ctx)
        elif event.kind == "deliver":
            src, message = event.payload
            if not state.up:
                return
            if self._clogged and (src in self._clogged or event.node in self._clogged):
                self._clog_held.append(event)
                return
            if self.network.blocked(src=src, dst=event.node):
                self._record(f"drop {src}->{event.node} {type(message).__name__}")
                return
            self._record(
                f"recv {src}->{event.node} {type(message).__name__}", lambda: _describe(message)
            )
            node.receive(ctx, src, message)
        elif event.kind == "timer":
            name, seq = event.payload
            if state.timers.get(name) != seq:
                return  # re-armed or cancelled since
            del state.timers[name]
            self._record(f"timer {event.node} {name}")
            node.timer(ctx, name)
        self._apply(ctx, state)

    def _apply(self, ctx: NodeContext, state: _NodeState) -> None:
        for effect in ctx.effects:
            if isinstance(effect, Send):
                if effect.dst not in self._nodes:
                    raise KeyError(f"{effect.src} sent to unknown node {effect.dst!r}")
                self.messages_sent += 1
                for delay in self.network.delays(src=effect.src, dst=effect.dst):
                    self._push(
                        "deliver",
                        effect.dst,
                        delay,
                        (effect.src, effect.message),
                        incarnation=self._nodes[effect.dst].incarnation,
                    )
            elif isinstance(effect, SetTimer):
                seq = self._seq + 1  # the sequence number _push is about to use
                self._push(
                    "timer",
                    effect.node,
                    effect.delay_ms,
                    (effect.name, seq),
                    incarnation=state.incarnation,
                )
                state.timers[effect.name] = seq
            else:
                self.observations.append((self.now_ms, effect))
                self._record(f"observe {effect.node} {effect.kind} {effect.value!r}")
                for observer in self.observers:
                    observer(self.now_ms, effect)


def _describe(message: Any) -> str:
    text = repr(message)
    return text if len(text) <= 200 else text[:197] + "..."
