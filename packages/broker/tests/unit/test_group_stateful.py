"""The coordinator against a model, under random joins, syncs, heartbeats, leaves,
commits, durability reports, clock jumps and failovers (Hypothesis stateful test).

Clients behave like sloppy real ones: any of them may send anything at any time with
whatever member id and generation it last learned. The model keeps what the clients
were told and the offsets whose commits were acknowledged; the invariants tie the
coordinator's state to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from rift_broker.group import (
    CommitReply,
    GroupConfig,
    GroupKey,
    HeartbeatReply,
    JoinReply,
    LeaveReply,
    MemoryDriver,
    Reply,
    SyncReply,
    decode_group_value,
    decode_key,
)
from rift_broker.group import GroupErrorCode as E

CLIENTS = ("a", "b", "c")
TOPIC = "t"


@dataclass
class Client:
    name: str
    member_id: str = ""
    generation: int = -1
    members: tuple[str, ...] = ()  # what the leader learned in its join answer
    assigned_generation: int | None = None


@dataclass
class Sent:
    client: str
    kind: str
    generation: int = -1
    offsets: dict[int, int] = field(default_factory=dict)


class GroupMachine(RuleBasedStateMachine):
    @initialize(delay=st.sampled_from([0, 3_000]))
    def start(self, delay: int) -> None:
        self.config = GroupConfig(initial_rebalance_delay_ms=delay)
        self.d = MemoryDriver(config=self.config, auto_durable=False)
        self.clients = {n: Client(n) for n in CLIENTS}
        self.sent: dict[int, Sent] = {}
        self.seen: set[int] = set()
        self.model: dict[tuple[str, int], int] = {}  # acknowledged commits, group "g"
        self.solo: dict[tuple[str, int], int] = {}  # standalone commits, group "solo"
        self.max_generation = 0
        self.durable_generation = 0  # highest generation an assignment was given for
        self.joined: dict[int, set[str]] = {}

    # -- reply handling ------------------------------------------------------------

    def _handle(self) -> None:
        for rid, reply in list(self.d.replies.items()):
            if rid in self.seen:
                continue
            self.seen.add(rid)
            self._apply(self.sent.pop(rid), reply)

    def _apply(self, sent: Sent, reply: Reply) -> None:
        event(f"{type(reply).__name__} {E(getattr(reply, 'error', 0)).name}")
        client = self.clients[sent.client]
        if isinstance(reply, JoinReply):
            if reply.error in (E.MEMBER_ID_REQUIRED, E.NONE):
                client.member_id = reply.member_id
            if reply.error == E.NONE:
                client.generation = reply.generation_id
                client.members = tuple(m.member_id for m in reply.members)
                self.joined.setdefault(reply.generation_id, set()).add(reply.member_id)
                assert (reply.leader == reply.member_id) == bool(reply.members)
            elif reply.error == E.UNKNOWN_MEMBER_ID:
                client.member_id, client.generation = "", -1
        elif isinstance(reply, SyncReply):
            if reply.error == E.NONE:
                # An assignment is handed out only once it is durable in the log, and
                # it is the one that generation's leader made for this member.
                assert reply.assignment in (f"{sent.generation}:{client.member_id}".encode(), b"")
                assert (sent.generation, client.member_id, reply.assignment) in self._durable()
                client.assigned_generation = sent.generation
                self.durable_generation = max(self.durable_generation, sent.generation)
            elif reply.error == E.UNKNOWN_MEMBER_ID:
                client.member_id, client.generation = "", -1
            elif reply.error in (E.REBALANCE_IN_PROGRESS, E.ILLEGAL_GENERATION):
                client.generation = -1  # rejoin
        elif isinstance(reply, HeartbeatReply):
            if reply.error == E.UNKNOWN_MEMBER_ID:
                client.member_id, client.generation = "", -1
            elif reply.error in (E.REBALANCE_IN_PROGRESS, E.ILLEGAL_GENERATION):
                client.generation = -1  # rejoin
        elif isinstance(reply, CommitReply):
            target = self.solo if sent.kind == "solo" else self.model
            for p in reply.partitions:
                if p.error == E.NONE:
                    target[(p.topic, p.partition)] = sent.offsets[p.partition]
        elif isinstance(reply, LeaveReply):
            client.member_id, client.generation = "", -1

    def _durable(self) -> set[tuple[int, str, bytes]]:
        """(generation, member, assignment) of every group record in the durable log."""
        found = set()
        for record in self.d.log[0]:
            key = decode_key(record.key)
            if isinstance(key, GroupKey) and key.group_id == "g" and record.value is not None:
                value = decode_group_value(record.value)
                found |= {(value.generation, m.member_id, m.assignment) for m in value.members}
        return found

    def _send(self, rid: int, sent: Sent) -> None:
        assert rid not in self.sent
        self.sent[rid] = sent
        self._handle()

    # -- client rules --------------------------------------------------------------

    # Hypothesis picks rules uniformly: three rules run the well-behaved step, so the
    # group reaches Stable often enough while the misbehaving rules still interleave.
    @rule(name=st.sampled_from(CLIENTS), partition=st.integers(0, 2), offset=st.integers(0, 99))
    def step(self, name: str, partition: int, offset: int) -> None:
        self._step(name, partition, offset)

    @rule(name=st.sampled_from(CLIENTS), partition=st.integers(0, 2), offset=st.integers(0, 99))
    def step_too(self, name: str, partition: int, offset: int) -> None:
        self._step(name, partition, offset)

    @rule(name=st.sampled_from(CLIENTS), partition=st.integers(0, 2), offset=st.integers(0, 99))
    def step_again(self, name: str, partition: int, offset: int) -> None:
        self._step(name, partition, offset)

    def _step(self, name: str, partition: int, offset: int) -> None:
        """What a well-behaved client does next (the other rules misbehave)."""
        c = self.clients[name]
        if any(s.client == name for s in self.sent.values()):
            # It waits for an answer: let the world make progress.
            if self.d.in_flight:
                self.append_ends(ok=True)
            else:
                self.advance(1_000)
            return
        if c.generation < 0:
            self.join(name, b"v1")
        elif c.assigned_generation != c.generation:
            self.sync(name)
        elif offset % 2:
            self.commit(name, partition, offset, standalone=False)
        else:
            self.heartbeat(name)

    @rule(name=st.sampled_from(CLIENTS), metadata=st.sampled_from([b"v1", b"v2"]))
    def join(self, name: str, metadata: bytes) -> None:
        c = self.clients[name]
        c.assigned_generation = None  # eager protocol: revoke everything, then rejoin
        rid = self.d.join(
            "g",
            c.member_id,
            client_id=name,
            session_timeout_ms=6_000,
            rebalance_timeout_ms=10_000,
            protocols=[("range", metadata)],
        )
        self._send(rid, Sent(client=name, kind="join"))

    @rule(name=st.sampled_from(CLIENTS))
    def sync(self, name: str) -> None:
        c = self.clients[name]
        assignment = {m: f"{c.generation}:{m}".encode() for m in c.members}
        rid = self.d.sync("g", c.member_id, c.generation, assignment)
        self._send(rid, Sent(client=name, kind="sync", generation=c.generation))

    @rule(name=st.sampled_from(CLIENTS))
    def heartbeat(self, name: str) -> None:
        c = self.clients[name]
        rid = self.d.heartbeat("g", c.member_id, c.generation)
        self._send(rid, Sent(client=name, kind="heartbeat"))

    @rule(name=st.sampled_from(CLIENTS), roll=st.integers(0, 4))
    def leave(self, name: str, roll: int) -> None:
        if roll:  # rarer than the other requests
            return
        c = self.clients[name]
        rid = self.d.leave("g", c.member_id)
        self._send(rid, Sent(client=name, kind="leave"))

    @rule(
        name=st.sampled_from(CLIENTS),
        partition=st.integers(0, 2),
        offset=st.integers(0, 1_000),
        standalone=st.booleans(),
    )
    def commit(self, name: str, partition: int, offset: int, standalone: bool) -> None:
        c = self.clients[name]
        if standalone:
            rid = self.d.commit("solo", {(TOPIC, partition): offset})
        else:
            rid = self.d.commit(
                "g", {(TOPIC, partition): offset}, member_id=c.member_id, generation_id=c.generation
            )
        kind = "solo" if standalone else "commit"
        if not standalone and rid not in self.d.replies:
            # Accepted for durability: only from a member of the live generation, or
            # a standalone commit (generation -1) while the group is Empty.
            view = self.d.coordinator.describe("g")
            assert view is not None
            if c.generation < 0:
                assert view.state == "Empty"
            else:
                assert c.generation == view.generation
                assert c.member_id in {m.member_id for m in view.members}
                assert view.state in ("Stable", "PreparingRebalance")
        self._send(rid, Sent(client=name, kind=kind, offsets={partition: offset}))

    # -- environment rules ---------------------------------------------------------

    @precondition(lambda self: bool(self.d.in_flight))
    @rule(ok=st.booleans())
    def append_ends(self, ok: bool) -> None:
        # Appends to one partition become durable in order (the high watermark).
        self.d.complete(min(self.d.in_flight), error=0 if ok else 19)
        self._handle()

    @rule(ms=st.sampled_from([0, 500, 1_000, 2_000, 3_000, 6_000, 11_000]))
    def advance(self, ms: int) -> None:
        self.d.advance(ms)
        self._handle()

    @rule(roll=st.integers(0, 9))
    def failover(self, roll: int) -> None:
        if roll:  # rare
            return
        # The old leader steps down (answering what waits), a new one loads the log.
        self.d.unload()
        self._handle()
        assert not self.sent
        old = self.d
        self.d = old.failover()
        self.seen = set()
        self.max_generation = 0
        view = self.d.coordinator.describe("g")
        if view is not None:
            # Every assignment handed out was durable, so its generation survives.
            assert view.generation >= self.durable_generation
            self.max_generation = view.generation

    # -- invariants ----------------------------------------------------------------

    @invariant()
    def generation_never_decreases(self) -> None:
        view = self.d.coordinator.describe("g")
        generation = 0 if view is None else view.generation
        assert generation >= self.max_generation
        self.max_generation = generation

    @invariant()
    def one_live_generation(self) -> None:
        view = self.d.coordinator.describe("g")
        if view is None:
            return
        live = [m for m in view.members if m.assignment is not None]
        if live:
            assert view.state == "Stable"
        # A client drops its assignment before it rejoins, so whoever holds a live
        # member's assignment holds the current generation's.
        holders = {
            c.assigned_generation
            for c in self.clients.values()
            if c.member_id in {m.member_id for m in live} and c.assigned_generation is not None
        }
        assert holders <= {view.generation}

    @invariant()
    def stable_members_are_in_the_current_generation(self) -> None:
        view = self.d.coordinator.describe("g")
        if view is None or view.state != "Stable":
            return
        assert all(m.assignment is not None for m in view.members)
        assert view.leader in {m.member_id for m in view.members}

    @invariant()
    def committed_offsets_match_the_model(self) -> None:
        committed = {tp: v.offset for tp, v in self.d.coordinator.committed("g").items()}
        assert committed == self.model
        solo = {tp: v.offset for tp, v in self.d.coordinator.committed("solo").items()}
        assert solo == self.solo

    @invariant()
    def every_request_is_answered_once_or_waiting(self) -> None:
        assert self.d.coordinator.waiting_requests == set(self.sent)

    def teardown(self) -> None:
        if not hasattr(self, "d"):
            return
        # Liveness: with appends completing and time passing, every request is answered.
        for _ in range(50):
            if not self.sent:
                break
            while self.d.in_flight:
                self.d.complete(min(self.d.in_flight))
                self._handle()
            if not self.d.advance_to_next_deadline():
                self._handle()
                break
            self._handle()
        assert not self.sent, f"never answered: {self.sent}"


GroupMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=60, deadline=None)
test_group_coordinator_against_model = GroupMachine.TestCase
