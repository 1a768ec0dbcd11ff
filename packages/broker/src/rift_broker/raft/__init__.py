"""The Raft metadata quorum as a sans-IO core (DESIGN.md Rule 1).

``RaftNode`` takes ``tick``/``receive``/``propose`` and hands back ``Ready``
batches: persist, then send, then apply. ``rift_broker.controller`` builds the
metadata state machine and the active controller on top; drivers (asyncio, the
simulator) only move bytes, time and randomness in and out. A driver's loop,
with ``storage`` a ``RaftStorage`` and ``controller`` a ``Controller``::

    state = storage.load()
    node = RaftNode(me, voters, now_ms=now, state=state,
                    next_timeout=lambda: rng.randint(T, 2 * T - 1))
    if state.snapshot is not None:
        controller.restore(state.snapshot.data)
    # on a message: node.receive(message, now); on the timer (node.next_deadline()):
    # node.tick(now) and propose controller.tick(now).records; then, every time:
    while node.has_ready():
        ready = node.ready()
        storage.persist(ready)                    # 1. durable (fsync) first
        send(ready.messages)                      # 2. then the messages
        if ready.snapshot is not None:            # 3. then apply
            controller.restore(ready.snapshot.data)
        for entry in ready.committed:
            controller.apply(entry.index, entry.command)
        if ready.snapshot_due is not None:        # 4. compaction, when advised
            storage.save_snapshot(node.compact(ready.snapshot_due, controller.snapshot()))
    controller.on_leadership(is_leader=node.is_leader, term=node.term,   # after every
                             log_end=node.log.last_index, now_ms=now)    # input

``rift_broker.raft.testing.SimCluster`` is that loop over an in-memory network.
The node's attributes (``term``, ``role``, ``commit_index``, ``log``, ...) are for
reading; only its methods change it.
"""

from __future__ import annotations

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
from rift_broker.raft._node import RaftNode
from rift_broker.raft._storage import (
    EpochStore,
    HardStateRegression,
    MemoryEpochStore,
    MemoryRaftStorage,
    RaftStorage,
    check_hard_state,
)

__all__ = [
    # the node and its outputs
    "RaftNode",
    "RaftConfig",
    "Role",
    "Ready",
    "NotLeader",
    "RaftLog",
    # durable state
    "NOOP",
    "Entry",
    "HardState",
    "Snapshot",
    "PersistentState",
    "EpochStore",
    "RaftStorage",
    "MemoryEpochStore",
    "MemoryRaftStorage",
    "HardStateRegression",
    "check_hard_state",
    # messages
    "Message",
    "PreVoteRequest",
    "PreVoteResponse",
    "VoteRequest",
    "VoteResponse",
    "AppendEntries",
    "AppendEntriesResponse",
    "InstallSnapshot",
    "InstallSnapshotResponse",
]
