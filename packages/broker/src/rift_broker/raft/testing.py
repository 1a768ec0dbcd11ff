"""An in-memory, virtual-time cluster of Raft nodes with Raft's safety checks.

Like ``trio.testing``, this fake ships with the package: the unit tests drive it
with seeded schedules, and it doubles as a small reference driver for anyone
wiring ``RaftNode`` to a real network (the ``_drain`` method *is* the Ready
contract). Everything random comes from the ``rng`` passed in (a
``random.Random``); this module never imports ``random`` or a clock.

The network delays each message by a random number of milliseconds (which
reorders them), may lose or duplicate it, and drops it if its link is blocked
by the current *grudge* (a set of directed ``(src, dst)`` links) when it is sent
or when it would be delivered. A crash throws a node away with everything it had
not persisted; a restart builds a new node from its ``MemoryRaftStorage``.
``random_step`` draws one step of a schedule: a fault (any grudge, isolating the
leader, healing, crashing any node or the leader, restarting), a proposal, or
the next event in virtual time.

The replicated state machine is a list of commands per node; a subclass can put
its own beside it by overriding ``apply``, ``snapshot_state``, ``restore_state``
and ``after_input`` (the controller tests run ``Controller`` this way).

``SafetyChecker`` asserts, after every step: at most one leader per term; every
``(index, term)`` names one command and one predecessor term in every log (which
gives log matching by induction); a node never drops a committed entry from its
log, and every later leader holds it (leader completeness); no two nodes apply
different commands at one index (state machine safety); commit indexes never go
back while a node lives; terms and votes persist monotonically (the storage
raises). A violation raises ``SafetyViolation``.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, TypeVar

from rift_broker.raft._config import NotLeader, RaftConfig, Role
from rift_broker.raft._messages import Entry, Message
from rift_broker.raft._node import RaftNode
from rift_broker.raft._storage import MemoryRaftStorage

__all__ = ["Rng", "SafetyChecker", "SafetyViolation", "SimCluster", "decode_state", "encode_state"]

T = TypeVar("T")


class Rng(Protocol):
    """The part of ``random.Random`` the cluster uses."""

    def random(self) -> float: ...

    def randint(self, a: int, b: int) -> int: ...


class SafetyViolation(AssertionError):
    """One of Raft's safety properties does not hold."""


def encode_state(commands: Sequence[bytes]) -> bytes:
    """The test state machine (the list of applied commands) as snapshot bytes."""
    return json.dumps([c.hex() for c in commands]).encode()


def decode_state(data: bytes) -> list[bytes]:
    return [bytes.fromhex(c) for c in json.loads(data)]


class SafetyChecker:
    """Cluster-wide bookkeeping that proves or refutes Raft's safety properties."""

    def __init__(self) -> None:
        self.leaders: dict[int, int] = {}  # term -> the one leader of that term
        self.entries: dict[tuple[int, int], tuple[bytes, int]] = {}  # (index, term) -> cmd, prev
        self.committed: dict[int, Entry] = {}  # index -> the entry applied there
        self.commits: dict[int, int] = {}  # node -> last seen commit index
        self._checked: set[tuple[int, int]] = set()  # (node, term) checked for completeness

    def on_leader(self, node: RaftNode) -> None:
        leader = self.leaders.setdefault(node.term, node.node_id)
        if leader != node.node_id:
            raise SafetyViolation(f"two leaders in term {node.term}: {leader} and {node.node_id}")
        if (node.node_id, node.term) in self._checked:
            return
        self._checked.add((node.node_id, node.term))
        for index, entry in self.committed.items():
            if index > node.log.offset and node.log.term_at(index) != entry.term:
                raise SafetyViolation(
                    f"leader {node.node_id} of term {node.term} lacks committed entry {entry}"
                )

    def on_entries(self, node: RaftNode, entries: Iterable[Entry]) -> None:
        for entry in entries:
            prev = node.log.term_at(entry.index - 1)
            assert prev is not None
            known = self.entries.setdefault((entry.index, entry.term), (entry.command, prev))
            if known != (entry.command, prev):
                raise SafetyViolation(f"log matching: {entry} (prev term {prev}) vs {known}")

    def on_truncate(self, node_id: int, replaced: Iterable[Entry], new: Sequence[Entry]) -> None:
        """``replaced`` (stored entries at or above ``new[0].index``) give way to ``new``."""
        incoming = {e.index: e for e in new}
        for old in replaced:
            if self.committed.get(old.index) == old and incoming.get(old.index) != old:
                raise SafetyViolation(f"node {node_id} dropped committed {old} from its log")

    def on_apply(self, node_id: int, entry: Entry) -> None:
        done = self.committed.setdefault(entry.index, entry)
        if done != entry:
            raise SafetyViolation(f"node {node_id} applied {entry} where {done} was applied")

    def on_snapshot(self, node_id: int, state: Sequence[bytes]) -> None:
        for index, command in enumerate(state, start=1):
            done = self.committed.get(index)
            if done is not None and done.command != command:
                raise SafetyViolation(f"node {node_id}'s snapshot has {command!r} at {index}")

    def on_commit(self, node: RaftNode) -> None:
        if node.commit_index < self.commits.get(node.node_id, 0):
            raise SafetyViolation(f"node {node.node_id}'s commit index went back")
        self.commits[node.node_id] = node.commit_index

    def forget(self, node_id: int) -> None:
        self.commits.pop(node_id, None)  # a restarted node re-learns its commit index


class SimCluster:
    """N nodes over an in-memory network in virtual time (milliseconds)."""

    def __init__(
        self,
        size: int,
        rng: Rng,
        *,
        config: RaftConfig | None = None,
        min_delay_ms: int = 1,
        max_delay_ms: int = 10,
        loss: float = 0.0,
        duplicate: float = 0.0,
    ) -> None:
        self.rng = rng
        self.config = config or RaftConfig(
            election_timeout_ms=150, heartbeat_interval_ms=30, snapshot_threshold=16
        )
        self.ids = tuple(range(1, size + 1))
        self.min_delay_ms, self.max_delay_ms = min_delay_ms, max_delay_ms
        self.loss, self.duplicate = loss, duplicate
        self.now = 0
        self.grudge: set[tuple[int, int]] = set()
        self.storage = {i: MemoryRaftStorage() for i in self.ids}
        self.state: dict[int, list[bytes]] = {i: [] for i in self.ids}
        self.nodes: dict[int, RaftNode | None] = {}
        self.checker = SafetyChecker()
        self._queue: list[tuple[int, int, Message]] = []
        self._seq = 0
        self.delivered = 0
        self._proposed = 0
        for i in self.ids:
            self.restart(i)

    # -- faults and inputs -----------------------------------------------------

    def live(self) -> list[RaftNode]:
        return [n for n in self.nodes.values() if n is not None]

    def leader(self) -> RaftNode | None:
        """The live leader of the highest term, if any."""
        leaders = [n for n in self.live() if n.role is Role.LEADER]
        return max(leaders, key=lambda n: n.term) if leaders else None

    def crash(self, node_id: int) -> None:
        self.nodes[node_id] = None
        self.checker.forget(node_id)

    def restart(self, node_id: int) -> None:
        stored = self.storage[node_id].load()
        self.state[node_id] = []
        if stored.snapshot is not None:
            self.restore_state(node_id, stored.snapshot.data)
        timeout = self.config.election_timeout_ms
        self.nodes[node_id] = RaftNode(
            node_id,
            self.ids,
            now_ms=self.now,
            next_timeout=lambda: self.rng.randint(timeout, 2 * timeout - 1),
            state=stored,
            config=self.config,
        )

    def partition(self, *groups: Iterable[int]) -> None:
        """Block every link between different groups (nodes in no group are isolated)."""
        where = {i: g for g, members in enumerate(groups) for i in members}
        self.grudge = {
            (a, b)
            for a in self.ids
            for b in self.ids
            if a != b and where.get(a, -1 - a) != where.get(b, -1 - b)
        }

    def heal(self) -> None:
        self.grudge = set()

    def propose(self, node_id: int, command: bytes) -> int | NotLeader | None:
        node = self.nodes[node_id]
        if node is None:
            return None
        result = node.propose(command)
        self._drain(node)
        return result

    # -- time ------------------------------------------------------------------

    def next_event(self) -> int:
        times = [n.next_deadline() for n in self.live()]
        if self._queue:
            times.append(self._queue[0][0])
        return max(self.now, min(times)) if times else self.now

    def advance(self) -> None:
        """Jump to the next timer or delivery and handle everything due then."""
        self.now = self.next_event()
        while self._queue and self._queue[0][0] <= self.now:
            _, _, message = heapq.heappop(self._queue)
            node = self.nodes.get(message.dst)
            if node is None or (message.src, message.dst) in self.grudge:
                continue
            self.delivered += 1
            node.receive(message, self.now)
            self._drain(node)
        for node in self.live():
            if node.next_deadline() <= self.now:
                node.tick(self.now)
                self._drain(node)
        self.check()

    def run_until(self, done: Callable[[], bool], *, within_ms: int) -> bool:
        deadline = self.now + within_ms
        while not done():
            if self.now >= deadline:
                return False
            self.advance()
        return True

    def run_for(self, ms: int) -> None:
        deadline = self.now + ms
        while self.next_event() <= deadline:
            self.advance()
        self.now = max(self.now, deadline)

    # -- the driver: the Ready contract ----------------------------------------

    def _drain(self, node: RaftNode) -> None:
        while node.has_ready():
            ready = node.ready()
            self.checker.on_entries(node, ready.entries)
            if ready.entries and ready.snapshot is None:
                first = ready.entries[0].index
                stored = self.storage[node.node_id].entries
                start = max(0, first - stored[0].index) if stored else 0
                self.checker.on_truncate(node.node_id, stored[start:], ready.entries)
            self.storage[node.node_id].persist(ready)  # 1. persist
            for message in ready.messages:  # 2. send
                self._send(message)
            if ready.snapshot is not None:  # 3. apply
                self.restore_state(node.node_id, ready.snapshot.data)
            for entry in ready.committed:
                self.apply(node.node_id, entry)
            if ready.snapshot_due is not None:  # 4. compact
                snapshot = node.compact(ready.snapshot_due, self.snapshot_state(node.node_id))
                self.storage[node.node_id].save_snapshot(snapshot)
            self.checker.on_commit(node)
        self.after_input(node)

    # -- the state machine: a list of commands; subclasses may add their own ----

    def apply(self, node_id: int, entry: Entry) -> None:
        state = self.state[node_id]
        if entry.index != len(state) + 1:
            raise SafetyViolation(f"node {node_id} applied {entry} out of order")
        self.checker.on_apply(node_id, entry)
        state.append(entry.command)

    def snapshot_state(self, node_id: int) -> bytes:
        return encode_state(self.state[node_id])

    def restore_state(self, node_id: int, data: bytes) -> None:
        self.state[node_id] = decode_state(data)
        self.checker.on_snapshot(node_id, self.state[node_id])

    def after_input(self, node: RaftNode) -> None:
        """Called after every input to ``node`` once its Readys are handled."""

    def _send(self, message: Message) -> None:
        if (message.src, message.dst) in self.grudge or self.rng.random() < self.loss:
            return
        copies = 2 if self.rng.random() < self.duplicate else 1
        for _ in range(copies):
            delay = self.rng.randint(self.min_delay_ms, self.max_delay_ms)
            self._seq += 1
            heapq.heappush(self._queue, (self.now + delay, self._seq, message))

    def random_step(self, *, faults: float = 0.02, proposals: float = 0.1) -> None:
        """One step of a random schedule: maybe a fault or a proposal, then time."""
        r = self.rng.random()
        if r < faults:
            self._random_fault()
        elif r < faults + proposals:
            self._proposed += 1
            node = self.leader() or self._pick(self.live())
            if node is not None:
                self.propose(node.node_id, b"c%d" % self._proposed)
        self.advance()

    def _random_fault(self) -> None:
        r = self.rng.random()
        down = [i for i, n in self.nodes.items() if n is None]
        leader = self.leader()
        if r < 0.2:  # any grudge: block each directed link with probability 1/2
            self.grudge = {
                (a, b) for a in self.ids for b in self.ids if a != b and self.rng.random() < 0.5
            }
        elif r < 0.3 and leader is not None:
            self.partition([i for i in self.ids if i != leader.node_id])
        elif r < 0.45:
            self.heal()
        elif r < 0.6 and len(down) < len(self.ids):
            victim = self._pick([n.node_id for n in self.live()])
            if victim is not None:
                self.crash(victim)
        elif r < 0.7 and leader is not None:
            self.crash(leader.node_id)
        elif down:
            choice = self._pick(down)
            assert choice is not None
            self.restart(choice)

    def _pick(self, items: Sequence[T]) -> T | None:
        return items[self.rng.randint(0, len(items) - 1)] if items else None

    def check(self) -> None:
        for node in self.live():
            if node.role is Role.LEADER:
                self.checker.on_leader(node)
