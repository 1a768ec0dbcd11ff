"""One Raft node as a sans-IO state machine (Raft §5, with pre-vote and check-quorum).

Theory of operation
-------------------
The driver feeds three inputs — ``tick(now_ms)``, ``receive(message, now_ms)``,
``propose(command)`` — and after each (or after several) drains one ``Ready``:
what to persist, then what to send, then what to apply (see ``Ready``). The node
never reads a clock or a random source: time is an argument and randomised
election timeouts come from the driver's ``next_timeout`` callable.

Roles and transitions (every row also resets the election timer):

=============  ====================================  ==============================
from           event                                 to
=============  ====================================  ==============================
follower       election timer fires                  pre-candidate (asks PreVote
                                                     for term+1; term unchanged)
pre-candidate  PreVote granted by a majority         candidate (term+1, votes for
                                                     itself, asks Vote)
pre-/cand.     election timer fires                  pre-candidate (a new round)
candidate      Vote granted by a majority            leader (appends a no-op)
pre-/cand.     AppendEntries/InstallSnapshot of the  follower of its sender
               current term
leader         check-quorum: no majority heard from  follower (same term, no leader)
               within ``election_timeout_ms``
any            a message with a higher term (except  follower of that term
               PreVote traffic; except a (Pre)Vote
               request inside the leader lease)
=============  ====================================  ==============================

Safety rests on: a vote is given at most once per term and is durable before
the response is sent (Ready order); a candidate's log must be at least as up to
date as the voter's; a leader only commits by counting entries of its own term;
a follower only truncates above its commit index.

Pre-vote and the lease keep a partitioned node from deposing a healthy leader:
a node only bumps its term after a majority said it *would* vote for it, and a
node that heard from a leader within ``election_timeout_ms`` ignores (pre-)vote
requests altogether. Check-quorum makes the lease sound: a leader that has not
heard from a majority for that long steps down.

Replication: per peer the leader keeps ``next_index``/``match_index`` and a mode.
A *probing* peer gets one AppendEntries per heartbeat or response, starting at
``next_index``; a rejection carries a hint (the first index of the conflicting
term, or the follower's log end) and the leader moves ``next_index`` back to it.
After a success the peer is *replicating*: new entries are sent at once, the
next batch goes out on every success, and ``next_index`` advances optimistically.
A peer whose ``next_index`` fell below the compacted log gets the latest
snapshot instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from rift_broker.raft._config import NotLeader, RaftConfig, Ready, Role
from rift_broker.raft._log import RaftLog
from rift_broker.raft._messages import (
    NOOP,
    AppendEntries,
    AppendEntriesResponse,
    Entry,
    HardState,
    InstallSnapshot,
    InstallSnapshotResponse,
    Message,
    PersistentState,
    PreVoteRequest,
    PreVoteResponse,
    Snapshot,
    VoteRequest,
    VoteResponse,
)
from rift_broker.raft._progress import Progress, quorum_index

__all__ = ["RaftNode"]


class RaftNode:
    """A Raft node. Construct it from the persisted state, both at first start and
    at every restart (``PersistentState()`` when nothing was ever persisted); the
    driver restores its state machine from ``state.snapshot`` itself.
    """

    def __init__(
        self,
        node_id: int,
        voters: Iterable[int],
        *,
        now_ms: int,
        next_timeout: Callable[[], int],
        state: PersistentState | None = None,
        config: RaftConfig | None = None,
    ) -> None:
        self.node_id = node_id
        self.voters = tuple(sorted(set(voters)))
        if node_id not in self.voters:
            raise ValueError(f"node {node_id} is not one of the voters {self.voters}")
        self.config = config if config is not None else RaftConfig()
        self._next_timeout = next_timeout
        state = state if state is not None else PersistentState()
        self._peers = tuple(v for v in self.voters if v != node_id)
        self._quorum = len(self.voters) // 2 + 1

        self.term = state.hard_state.term
        self.voted_for = state.hard_state.voted_for
        self._persisted_hard = state.hard_state
        self.log = RaftLog(snapshot=state.snapshot, entries=state.entries)
        self.snapshot = state.snapshot
        self.commit_index = self.log.offset  # anything above is re-learnt from a leader
        self.applied_index = self.log.offset

        self.role = Role.FOLLOWER
        self.leader_id: int | None = None
        self._last_leader_contact: int | None = None
        self._votes: dict[int, bool] = {}
        self._progress: dict[int, Progress] = {}  # per peer, while leading

        self._election_deadline = 0
        self._heartbeat_deadline = 0
        self._check_quorum_deadline = 0
        self._reset_election_timer(now_ms)

        self._messages: list[Message] = []
        self._unstable_from: int | None = None
        self._pending_snapshot: Snapshot | None = None

    # -- queries -------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        return self.role is Role.LEADER

    @property
    def hard_state(self) -> HardState:
        return HardState(term=self.term, voted_for=self.voted_for)

    def next_deadline(self) -> int:
        """The earliest ``now_ms`` at which ``tick`` has something to do."""
        if self.role is Role.LEADER:
            if self.config.check_quorum:
                return min(self._heartbeat_deadline, self._check_quorum_deadline)
            return self._heartbeat_deadline
        return self._election_deadline

    def has_ready(self) -> bool:
        return bool(
            self._messages
            or self._unstable_from is not None
            or self._pending_snapshot is not None
            or self.hard_state != self._persisted_hard
            or self.commit_index > self.applied_index
        )

    # -- inputs --------------------------------------------------------------

    def tick(self, now_ms: int) -> None:
        """Fire whichever timers are due at ``now_ms``."""
        if self.role is Role.LEADER:
            if self.config.check_quorum and now_ms >= self._check_quorum_deadline:
                if 1 + sum(p.active for p in self._progress.values()) < self._quorum:
                    self._become_follower(self.term, None, now_ms)
                    return
                for progress in self._progress.values():
                    progress.active = False
                self._check_quorum_deadline = now_ms + self.config.election_timeout_ms
            if now_ms >= self._heartbeat_deadline:
                self._heartbeat_deadline = now_ms + self.config.heartbeat_interval_ms
                for peer in self._peers:
                    self._send_append(peer)
        elif now_ms >= self._election_deadline:
            self._campaign(now_ms)

    def propose(self, command: bytes) -> int | NotLeader:
        """Append ``command`` if this node leads; return its index (not yet committed)."""
        if not command:
            raise ValueError("an empty command is reserved for the leader's no-op")
        if self.role is not Role.LEADER:
            return NotLeader(leader_id=self.leader_id, term=self.term)
        index = self._append_local(command)
        for peer, progress in self._progress.items():
            if not progress.probing:
                self._send_append(peer)
        return index

    def receive(self, message: Message, now_ms: int) -> None:
        """Handle one message addressed to this node."""
        m = message
        if m.dst != self.node_id or m.src not in self._peers:
            return
        if m.term > self.term:
            if isinstance(m, PreVoteRequest | VoteRequest) and self._in_lease(now_ms):
                return  # a leader is alive: do not let a disruptive node move our term
            if isinstance(m, PreVoteRequest) or (isinstance(m, PreVoteResponse) and m.granted):
                pass  # pre-vote terms are never adopted
            else:
                leader = m.src if isinstance(m, AppendEntries | InstallSnapshot) else None
                self._become_follower(m.term, leader, now_ms)
        elif m.term < self.term:
            # Tell a stale sender our term so that it steps down; drop stale replies.
            if isinstance(m, AppendEntries | InstallSnapshot):
                self._reply_append(m.src, success=False, match_index=0, hint=0)
            elif isinstance(m, PreVoteRequest):
                self._send(
                    PreVoteResponse(src=self.node_id, dst=m.src, term=self.term, granted=False)
                )
            elif isinstance(m, VoteRequest):
                self._send(VoteResponse(src=self.node_id, dst=m.src, term=self.term, granted=False))
            return

        if isinstance(m, AppendEntries):
            self._on_append(m, now_ms)
        elif isinstance(m, AppendEntriesResponse):
            self._on_append_response(m)
        elif isinstance(m, InstallSnapshot):
            self._on_install_snapshot(m, now_ms)
        elif isinstance(m, InstallSnapshotResponse):
            self._on_progress(m.src, m.match_index)
        elif isinstance(m, PreVoteRequest | VoteRequest):
            self._on_vote_request(m, now_ms)
        elif isinstance(m, PreVoteResponse):
            if self.role is Role.PRE_CANDIDATE and m.term == self.term + 1:
                self._votes[m.src] = m.granted
                if self._won():
                    self._start_election(now_ms)
        elif self.role is Role.CANDIDATE and m.term == self.term:  # VoteResponse
            self._votes[m.src] = m.granted
            if self._won():
                self._become_leader(now_ms)

    def compact(self, index: int, data: bytes) -> Snapshot:
        """The driver's state machine image at applied ``index`` is ``data``.

        Drops the log up to ``index`` and returns the snapshot (it carries the
        term). The driver persists it first, then may delete stored entries up
        to ``index``. Lagging followers will be sent this snapshot.
        """
        if not self.log.offset <= index <= self.applied_index:
            raise ValueError(
                f"snapshot index {index} must lie in [{self.log.offset}, {self.applied_index}]"
            )
        term = self.log.term_at(index)
        assert term is not None
        snapshot = Snapshot(index=index, term=term, data=data)
        self.log.compact(index)
        self.snapshot = snapshot
        return snapshot

    # -- output --------------------------------------------------------------

    def ready(self) -> Ready:
        """Drain the pending outputs (see ``Ready`` for the driver's contract)."""
        hard = self.hard_state
        entries: tuple[Entry, ...] = ()
        if self._unstable_from is not None:
            entries = tuple(self.log.slice(self._unstable_from, self.log.last_index + 1))
        committed: tuple[Entry, ...] = ()
        if self.commit_index > self.applied_index:
            committed = tuple(self.log.slice(self.applied_index + 1, self.commit_index + 1))
            self.applied_index = self.commit_index
        threshold = self.config.snapshot_threshold
        due = threshold > 0 and self.applied_index - self.log.offset >= threshold
        ready = Ready(
            hard_state=hard if hard != self._persisted_hard else None,
            snapshot=self._pending_snapshot,
            entries=entries,
            messages=tuple(self._messages),
            committed=committed,
            snapshot_due=self.applied_index if due else None,
        )
        self._persisted_hard = hard
        self._unstable_from = None
        self._pending_snapshot = None
        self._messages = []
        return ready

    # -- elections -----------------------------------------------------------

    def _reset_election_timer(self, now_ms: int) -> None:
        timeout = self._next_timeout()
        if timeout < self.config.election_timeout_ms:
            raise ValueError(
                f"next_timeout() gave {timeout} ms, below election_timeout_ms "
                f"{self.config.election_timeout_ms}"
            )
        self._election_deadline = now_ms + timeout

    def _in_lease(self, now_ms: int) -> bool:
        if not self.config.check_quorum:
            return False
        if self.role is Role.LEADER:
            return True
        return (
            self.leader_id is not None
            and self._last_leader_contact is not None
            and now_ms - self._last_leader_contact < self.config.election_timeout_ms
        )

    def _won(self) -> bool:
        return sum(self._votes.values()) >= self._quorum

    def _campaign(self, now_ms: int) -> None:
        self.leader_id = None
        if not self.config.pre_vote:
            self._start_election(now_ms)
            return
        self.role = Role.PRE_CANDIDATE
        self._reset_election_timer(now_ms)
        self._votes = {self.node_id: True}
        for peer in self._peers:
            self._send(
                PreVoteRequest(
                    src=self.node_id,
                    dst=peer,
                    term=self.term + 1,
                    last_log_index=self.log.last_index,
                    last_log_term=self.log.last_term,
                )
            )
        if self._won():
            self._start_election(now_ms)

    def _start_election(self, now_ms: int) -> None:
        self.role = Role.CANDIDATE
        self.term += 1
        self.voted_for = self.node_id
        self.leader_id = None
        self._reset_election_timer(now_ms)
        self._votes = {self.node_id: True}
        for peer in self._peers:
            self._send(
                VoteRequest(
                    src=self.node_id,
                    dst=peer,
                    term=self.term,
                    last_log_index=self.log.last_index,
                    last_log_term=self.log.last_term,
                )
            )
        if self._won():
            self._become_leader(now_ms)

    def _on_vote_request(self, m: PreVoteRequest | VoteRequest, now_ms: int) -> None:
        pre = isinstance(m, PreVoteRequest)
        can_vote = (
            self.voted_for == m.src
            or (self.voted_for is None and self.leader_id is None)
            or (pre and m.term > self.term)
        )
        granted = can_vote and self.log.up_to_date(m.last_log_index, m.last_log_term)
        if pre:
            term = m.term if granted else self.term
            self._send(PreVoteResponse(src=self.node_id, dst=m.src, term=term, granted=granted))
            return
        if granted:
            self.voted_for = m.src  # durable before the response leaves (Ready order)
            self._reset_election_timer(now_ms)
        self._send(VoteResponse(src=self.node_id, dst=m.src, term=self.term, granted=granted))

    def _become_follower(self, term: int, leader: int | None, now_ms: int) -> None:
        if term > self.term:
            self.term, self.voted_for = term, None
        self.role = Role.FOLLOWER
        self.leader_id = leader
        self._votes = {}
        self._progress = {}
        self._reset_election_timer(now_ms)

    def _become_leader(self, now_ms: int) -> None:
        self.role = Role.LEADER
        self.leader_id = self.node_id
        self._votes = {}
        self._progress = {peer: Progress(self.log.last_index + 1) for peer in self._peers}
        self._check_quorum_deadline = now_ms + self.config.election_timeout_ms
        self._heartbeat_deadline = now_ms + self.config.heartbeat_interval_ms
        # The no-op lets entries of earlier terms commit (only own-term entries count).
        self._append_local(NOOP)
        for peer in self._peers:
            self._send_append(peer)

    # -- replication ---------------------------------------------------------

    def _append_local(self, command: bytes) -> int:
        index = self.log.last_index + 1
        self.log.append(Entry(term=self.term, index=index, command=command))
        self._mark_unstable(index)
        self._maybe_commit()
        return index

    def _mark_unstable(self, index: int) -> None:
        if self._unstable_from is None or index < self._unstable_from:
            self._unstable_from = index

    def _send(self, message: Message) -> None:
        self._messages.append(message)

    def _send_append(self, peer: int) -> None:
        progress = self._progress[peer]
        next_index = progress.next_index
        if next_index <= self.log.offset:
            assert self.snapshot is not None
            self._send(
                InstallSnapshot(src=self.node_id, dst=peer, term=self.term, snapshot=self.snapshot)
            )
            return
        prev = next_index - 1
        prev_term = self.log.term_at(prev)
        assert prev_term is not None
        entries = self.log.slice(next_index, next_index + self.config.max_entries_per_message)
        self._send(
            AppendEntries(
                src=self.node_id,
                dst=peer,
                term=self.term,
                prev_log_index=prev,
                prev_log_term=prev_term,
                entries=tuple(entries),
                commit=self.commit_index,
            )
        )
        if entries:
            progress.sent(entries[-1].index)

    def _on_append(self, m: AppendEntries, now_ms: int) -> None:
        assert self.role is not Role.LEADER, f"two leaders in term {self.term}"
        self._follow(m.src, now_ms)
        prev, prev_term, entries = m.prev_log_index, m.prev_log_term, m.entries
        if prev < self.commit_index:
            # Our committed prefix matches every leader's log: skip what it covers.
            entries = tuple(e for e in entries if e.index > self.commit_index)
            prev = self.commit_index
            known = self.log.term_at(prev)
            assert known is not None
            prev_term = known
        if self.log.term_at(prev) != prev_term:
            if prev > self.log.last_index:
                hint = self.log.last_index + 1
            else:
                hint = self.log.first_index_of_term(prev, floor=self.commit_index)
            self._reply_append(m.src, success=False, match_index=0, hint=hint)
            return
        for entry in entries:
            existing = self.log.term_at(entry.index)
            if existing == entry.term:
                continue
            if existing is not None:
                assert entry.index > self.commit_index, "a committed entry would be truncated"
                self.log.truncate_from(entry.index)
            self.log.append(entry)
            self._mark_unstable(entry.index)
        last_new = prev + len(entries)
        self.commit_index = max(self.commit_index, min(m.commit, last_new))
        self._reply_append(m.src, success=True, match_index=last_new, hint=0)

    def _reply_append(self, dst: int, *, success: bool, match_index: int, hint: int) -> None:
        self._send(
            AppendEntriesResponse(
                src=self.node_id,
                dst=dst,
                term=self.term,
                success=success,
                match_index=match_index,
                hint=hint,
            )
        )

    def _on_install_snapshot(self, m: InstallSnapshot, now_ms: int) -> None:
        assert self.role is not Role.LEADER, f"two leaders in term {self.term}"
        self._follow(m.src, now_ms)
        snap = m.snapshot
        if snap.index <= self.commit_index:
            match = self.commit_index
        elif self.log.term_at(snap.index) == snap.term:
            match = self.commit_index = snap.index  # our log already holds it
        else:
            self.log.reset(snap)
            self.snapshot = self._pending_snapshot = snap
            self.commit_index = self.applied_index = snap.index
            self._unstable_from = None  # the stored log is discarded wholesale
            match = snap.index
        self._send(
            InstallSnapshotResponse(src=self.node_id, dst=m.src, term=self.term, match_index=match)
        )

    def _follow(self, leader: int, now_ms: int) -> None:
        if self.role is not Role.FOLLOWER:
            self._become_follower(self.term, leader, now_ms)
        self.leader_id = leader
        self._last_leader_contact = now_ms
        self._reset_election_timer(now_ms)

    def _on_append_response(self, m: AppendEntriesResponse) -> None:
        if self.role is not Role.LEADER:
            return
        if m.success:
            self._on_progress(m.src, m.match_index)
            return
        if self._progress[m.src].rejected(m.hint):
            self._send_append(m.src)

    def _on_progress(self, peer: int, match_index: int) -> None:
        if self.role is not Role.LEADER:
            return
        progress = self._progress[peer]
        before = progress.match_index
        progress.acknowledged(match_index)
        if progress.match_index > before:
            self._maybe_commit()
        if progress.next_index <= self.log.last_index:
            self._send_append(peer)  # a lagging follower gets the next batch at once

    def _maybe_commit(self) -> None:
        matches = [p.match_index for p in self._progress.values()]
        candidate = quorum_index([*matches, self.log.last_index], self._quorum)
        if candidate > self.commit_index and self.log.term_at(candidate) == self.term:
            self.commit_index = candidate
