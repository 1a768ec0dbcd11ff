"""Follower-side replication of one partition: where to truncate, and the local HW.

Theory of operation
-------------------
When a node becomes a follower at leader epoch ``E`` its log may end with records
the new leader never had (they were appended by an old leader and never committed).
It must cut them off before fetching, but *not* blindly at its high watermark: the
HW a follower knows can lag the real one, and truncating to it can throw away
committed records that the follower is then the only survivor of (KIP-101).

Instead it asks the leader, with OffsetForLeaderEpoch, where the follower's latest
epoch ends in the leader's log. The leader answers ``(epoch, end_offset)``: the
largest epoch it has that is ``<=`` the one asked about, and the offset where that
epoch ends on the leader. Then:

- same epoch in the answer: the logs agree up to ``end_offset``; truncate to
  ``min(end_offset, local LEO)``;
- a smaller epoch in the answer: the leader never saw the follower's epoch; the logs
  can only agree up to the end of the answered epoch as the *follower* knows it,
  so truncate to ``min(end_offset, local end of that epoch)``;
- no epoch at all (UNDEFINED: the leader has no epoch that old): nothing local is
  known to be shared; truncate to the answered offset (or to 0 when it is -1).

After truncating the follower fetches from its LEO. Its high watermark is the
leader's HW capped by its own LEO; it never moves back except by truncation on a
new epoch, which the checker's hw-regression check observes on the leader only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

UNDEFINED_EPOCH = -1


@dataclass(frozen=True, slots=True, kw_only=True)
class EpochEndOffset:
    """An OffsetForLeaderEpoch answer: ``epoch`` ends at ``end_offset``."""

    epoch: int
    end_offset: int


def truncation_offset(
    *,
    local_log_end_offset: int,
    answer: EpochEndOffset,
    local_end_for_epoch: Callable[[int], EpochEndOffset],
) -> int:
    """The offset a follower truncates to, given the leader's answer (see module doc).

    ``local_end_for_epoch(e)`` is the follower's own OffsetForLeaderEpoch lookup.
    """
    if answer.epoch == UNDEFINED_EPOCH:
        # The leader holds no epoch this old: nothing local is known to be shared.
        return max(0, min(answer.end_offset, local_log_end_offset))
    # Records of one epoch at one offset are identical on every replica (one leader
    # per epoch), so the logs agree up to where the answered epoch ends on *both*
    # sides. When the epochs match, the local end is the local LEO; when the leader
    # answered an older epoch, it is where that epoch ends in the follower's log.
    local = local_end_for_epoch(answer.epoch)
    return min(answer.end_offset, local.end_offset, local_log_end_offset)


class FollowerPartition:
    """Replication state of a partition this node follows at ``leader_epoch``."""

    def __init__(
        self, *, topic: str, partition: int, leader: int, leader_epoch: int, log_end_offset: int
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.leader = leader
        self.leader_epoch = leader_epoch
        self.log_end_offset = log_end_offset
        self.high_watermark = 0
        self.truncated = False

    def on_truncated(self, *, log_end_offset: int) -> None:
        """Truncation for this epoch is done; fetching may begin."""
        self.log_end_offset = log_end_offset
        self.high_watermark = min(self.high_watermark, log_end_offset)
        self.truncated = True

    def on_restarted(self, *, log_end_offset: int) -> None:
        """The log was emptied and restarted at the leader's log start,
        ``log_end_offset``; every offset below it is committed (the leader's log
        start never passes its high watermark), so that is the HW too."""
        self.log_end_offset = log_end_offset
        self.high_watermark = log_end_offset
        self.truncated = True

    def on_fetched(self, *, log_end_offset: int, leader_high_watermark: int) -> None:
        """Records were appended from a fetch response (or none were)."""
        if not self.truncated:
            raise ValueError("a follower must truncate by epoch before it appends fetched data")
        self.log_end_offset = log_end_offset
        self.high_watermark = max(self.high_watermark, min(leader_high_watermark, log_end_offset))

    @property
    def fetch_offset(self) -> int:
        return self.log_end_offset
