"""Leader-side replication state of one partition: ISR, follower progress, high watermark.

Theory of operation
-------------------
Followers pull. Every follower fetch at offset ``f`` tells the leader that the
follower holds every offset below ``f`` (its log end offset, LEO). The leader keeps,
per replica, that LEO and the last time the follower was *caught up*: a fetch is
caught up when ``f`` reaches the leader's LEO as it is now, or as it was at the
follower's previous fetch (so a steady stream of appends does not make a fast
follower look slow). A follower that has not been caught up for
``replica_lag_time_max_ms`` is out of sync and the leader proposes removing it.

The high watermark (HW) is the minimum LEO over the *maximal* ISR: the committed ISR
plus any addition already proposed. Counting pending additions is the conservative
side (KIP-497): a replica on its way in must hold every offset below the HW before
the controller's record that admits it can be applied. The HW never moves back on
the leader.

ISR changes are proposals, not facts: :meth:`tick` and :meth:`on_follower_fetch`
return :class:`IsrChange` values that the driver sends to the controller stamped with
this leader's epoch and the partition epoch it knows; only when the controller's
decision comes back through the metadata log does :meth:`apply_isr` change the ISR.
A stale leader's proposal is rejected by the controller, never applied here.

acks=all: a produce of offsets up to ``last_offset`` is acknowledged when the HW is
past ``last_offset`` and the committed ISR has at least ``min_insync_replicas``
members. If the ISR is too small at the moment of the append the produce fails at
once with NOT_ENOUGH_REPLICAS; if it shrinks below min ISR while waiting, the produce
answers NOT_ENOUGH_REPLICAS_AFTER_APPEND (the record is in the leader's log but not
committed, which the client must treat as unknown).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicaProgress:
    """What the leader knows of one follower."""

    node: int
    log_end_offset: int
    last_caught_up_ms: int
    last_fetch_ms: int
    last_fetch_leader_leo: int


@dataclass(frozen=True, slots=True, kw_only=True)
class IsrChange:
    """A proposal to the controller: make ``isr`` the partition's ISR."""

    topic: str
    partition: int
    leader: int
    leader_epoch: int
    partition_epoch: int
    isr: tuple[int, ...]


class AckDecision(Enum):
    """What an acks=all produce waiting for ``last_offset`` should do now."""

    WAIT = "wait"
    ACK = "ack"
    NOT_ENOUGH_REPLICAS = "not-enough-replicas-after-append"


class LeaderPartition:
    """Replication bookkeeping for a partition this node leads at ``leader_epoch``."""

    def __init__(
        self,
        *,
        topic: str,
        partition: int,
        node: int,
        leader_epoch: int,
        partition_epoch: int,
        replicas: tuple[int, ...],
        isr: tuple[int, ...],
        log_end_offset: int,
        high_watermark: int,
        min_insync_replicas: int,
        replica_lag_time_max_ms: int,
        now_ms: int,
    ) -> None:
        if node not in replicas:
            raise ValueError(f"leader {node} is not a replica of {topic}-{partition}: {replicas}")
        if min_insync_replicas < 1:
            raise ValueError(f"min_insync_replicas must be >= 1, got {min_insync_replicas}")
        self.topic = topic
        self.partition = partition
        self.node = node
        self.leader_epoch = leader_epoch
        self.partition_epoch = partition_epoch
        self.replicas = replicas
        self.isr: tuple[int, ...] = tuple(isr)
        self.min_insync_replicas = min_insync_replicas
        self.replica_lag_time_max_ms = replica_lag_time_max_ms
        self.log_end_offset = log_end_offset
        # Offsets from here on belong to this leader's epoch; a follower rejoins the
        # ISR only once it holds one of them, proving it truncated for this epoch.
        self.epoch_start_offset = log_end_offset
        # A new leader cannot know followers' LEOs yet; it starts them at its own HW,
        # which every ISR member is known to hold, and gives them a full lag window.
        self.high_watermark = min(high_watermark, log_end_offset)
        self._pending: IsrChange | None = None
        self._progress: dict[int, ReplicaProgress] = {
            r: ReplicaProgress(
                node=r,
                log_end_offset=self.high_watermark,
                last_caught_up_ms=now_ms,
                last_fetch_ms=now_ms,
                last_fetch_leader_leo=log_end_offset,
            )
            for r in replicas
            if r != node
        }

    # -- inputs ---------------------------------------------------------------

    def on_local_append(self, *, log_end_offset: int) -> bool:
        """The leader's own log grew. Returns whether the HW moved."""
        self.log_end_offset = log_end_offset
        return self._advance_high_watermark()

    def on_local_truncate(self, *, log_end_offset: int) -> None:
        """Only legal above the HW (never truncate committed data)."""
        if log_end_offset < self.high_watermark:
            raise ValueError("a leader never truncates below its high watermark")
        self.log_end_offset = log_end_offset

    def on_follower_fetch(
        self, *, follower: int, fetch_offset: int, now_ms: int
    ) -> tuple[bool, IsrChange | None]:
        """A follower fetched at ``fetch_offset``. Returns (HW moved, ISR proposal)."""
        progress = self._progress.get(follower)
        if progress is None:
            raise ValueError(f"node {follower} is not a replica of {self.topic}-{self.partition}")
        # Not clamped to ``log_end_offset``: that is what the leader has *fsynced*,
        # and a follower may hold (and have fsynced) more of the leader's log than
        # that. The HW still waits for the leader's own fsync: it is the minimum.
        caught_up = progress.last_caught_up_ms
        if fetch_offset >= self.log_end_offset:
            caught_up = now_ms
        elif fetch_offset >= progress.last_fetch_leader_leo:
            caught_up = max(caught_up, progress.last_fetch_ms)
        self._progress[follower] = replace(
            progress,
            log_end_offset=fetch_offset,
            last_caught_up_ms=caught_up,
            last_fetch_ms=now_ms,
            last_fetch_leader_leo=self.log_end_offset,
        )
        moved = self._advance_high_watermark()
        proposal = None
        if (
            self._pending is None
            and follower not in self.isr
            and fetch_offset >= self.high_watermark
            and fetch_offset >= self._epoch_start_guard()
        ):
            proposal = self._propose((*self.isr, follower))
        return moved, proposal

    def tick(self, *, now_ms: int) -> IsrChange | None:
        """Propose removing followers that have lagged too long."""
        if self._pending is not None:
            return None
        lagging = {
            r
            for r in self.isr
            if r != self.node
            and now_ms - self._progress[r].last_caught_up_ms > self.replica_lag_time_max_ms
        }
        if not lagging:
            return None
        return self._propose(tuple(r for r in self.isr if r not in lagging))

    def apply_isr(self, *, isr: tuple[int, ...], partition_epoch: int) -> bool:
        """The controller committed a new ISR. Returns whether the HW moved."""
        if partition_epoch < self.partition_epoch:
            return False
        self.isr = tuple(isr)
        self.partition_epoch = partition_epoch
        self._pending = None
        return self._advance_high_watermark()

    def reject_pending(self) -> None:
        """The controller refused our proposal (stale epoch or invalid): drop it."""
        self._pending = None

    # -- questions ------------------------------------------------------------

    def can_accept_acks_all(self) -> bool:
        """Whether an acks=all produce may be appended at all right now."""
        return len(self.isr) >= self.min_insync_replicas

    def ack_decision(self, *, last_offset: int) -> AckDecision:
        """For a produce appended up to ``last_offset`` with acks=all."""
        if self.high_watermark > last_offset:
            if len(self.isr) >= self.min_insync_replicas:
                return AckDecision.ACK
            return AckDecision.NOT_ENOUGH_REPLICAS
        if len(self.isr) < self.min_insync_replicas:
            return AckDecision.NOT_ENOUGH_REPLICAS
        return AckDecision.WAIT

    def progress(self, node: int) -> ReplicaProgress:
        return self._progress[node]

    @property
    def pending(self) -> IsrChange | None:
        return self._pending

    def maximal_isr(self) -> tuple[int, ...]:
        if self._pending is None:
            return self.isr
        return tuple(dict.fromkeys((*self.isr, *self._pending.isr)))

    # -- internals ------------------------------------------------------------

    def _epoch_start_guard(self) -> int:
        # A follower may join once it holds every offset below the HW *and* has
        # reached this leader's epoch, so it has truncated any divergent tail.
        return self.epoch_start_offset

    def _propose(self, isr: tuple[int, ...]) -> IsrChange:
        self._pending = IsrChange(
            topic=self.topic,
            partition=self.partition,
            leader=self.node,
            leader_epoch=self.leader_epoch,
            partition_epoch=self.partition_epoch,
            isr=isr,
        )
        return self._pending

    def _advance_high_watermark(self) -> bool:
        leos = [self.log_end_offset]
        leos.extend(self._progress[r].log_end_offset for r in self.maximal_isr() if r != self.node)
        candidate = min(leos)
        if candidate > self.high_watermark:
            self.high_watermark = candidate
            return True
        return False
