"""Retention on a replicated log: how far each replica may delete, and how followers
follow their leader's log start.

Theory of operation
-------------------
Every replica, leader or follower, rolls aged segments and applies time and size
retention on its own, with its topic's settings (as Kafka does). Three rules keep
that safe for a replicated log:

1. **Never past the high watermark** (:func:`retention_limit`). A segment goes only
   if every offset in it is below the replica's high watermark, and below what the
   replica has fsynced. On the leader this means nothing a consumer has not been
   able to read is deleted, and nothing a follower still has to fetch to commit it;
   on a follower it means nothing it might have to truncate on a leader change.
   So the log start offset never passes the high watermark either.
2. **A follower's start follows the leader's** (:func:`follower_log_start`). Every
   fetch response carries the leader's log start offset; a follower whose own start
   is lower raises it (capped by what it holds durably and knows committed), and
   its next retention round deletes the segments wholly below it.
3. **A follower left behind restarts at the leader's start**
   (:func:`out_of_range_restart`). If the leader deleted segments the follower has
   not fetched yet, its fetch is answered OFFSET_OUT_OF_RANGE with the leader's log
   start offset. Nothing the follower holds can be made contiguous with what it can
   still fetch, so it truncates its log fully and starts it, empty, at the leader's
   log start, then catches up from there. A fetch out of range *above* the
   leader's end is a divergence question instead: the follower truncates by
   leader epoch again.

These are pure decisions; the replica manager applies them to the logs.
"""

from __future__ import annotations

__all__ = ["follower_log_start", "out_of_range_restart", "retention_limit"]


def retention_limit(*, high_watermark: int, flushed_offset: int) -> int:
    """The offset retention must not delete at or past, for one replica.

    A segment may be deleted only if all its offsets are below this limit. An
    unknown high watermark (a follower that has not fetched yet: -1) allows nothing.
    """
    return max(0, min(high_watermark, flushed_offset))


def follower_log_start(
    *,
    log_start_offset: int,
    leader_log_start_offset: int,
    high_watermark: int,
    flushed_offset: int,
) -> int:
    """The follower's log start after a fetch response carrying the leader's start.

    It only moves up, and never past what the follower holds durably and knows
    committed (a response may report a leader start beyond the records it carries;
    the next fetch, out of range, restarts the follower there instead).
    """
    if leader_log_start_offset < 0:  # not reported
        return log_start_offset
    return max(log_start_offset, min(leader_log_start_offset, high_watermark, flushed_offset))


def out_of_range_restart(*, log_end_offset: int, leader_log_start_offset: int) -> int | None:
    """Where a follower whose fetch was out of range restarts its log, or None.

    None: the leader's log starts at or below the follower's end, so the fetch was
    out of range above the leader's end; the follower truncates by epoch again.
    """
    if leader_log_start_offset > log_end_offset:
        return leader_log_start_offset
    return None
