"""A flush in three steps, so the fsync itself can run off the event loop.

``PartitionLog.begin_flush()`` (event-loop thread) snapshots which files hold
unsynced bytes and the log end offset they cover; ``FlushTicket.run()`` (any
thread) fsyncs them and, when closed segments became durable, persists the new
recovery point; ``PartitionLog.complete_flush(ticket)`` (event-loop thread)
advances ``flushed_offset`` or stops the log if an fsync failed. Appends may go on
while ``run`` is in flight (they write to the same files; the next ticket covers
them); truncation, retention and close must not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rift_broker.log.checkpoint import write_checkpoint
from rift_broker.log.segment import Segment
from rift_broker.storage import Storage

__all__ = ["FlushTicket", "FlushWork"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FlushWork:
    segment: Segment
    log_size: int  # bytes of the segment's log this flush makes durable
    sync_log: bool
    sync_indexes: bool


@dataclass(slots=True, kw_only=True)
class FlushTicket:
    storage: Storage
    work: list[FlushWork]
    target_offset: int  # every offset below it is durable once run() succeeds
    checkpoint_path: str | None = None  # where to persist target_offset as recovery point
    error: OSError | None = field(default=None)
    ran: bool = False

    @property
    def fsyncs_needed(self) -> bool:
        return bool(self.work) or self.checkpoint_path is not None

    def run(self) -> None:
        """fsync everything in the ticket; records an ``OSError`` instead of raising."""
        try:
            for item in self.work:
                item.segment.sync_files(sync_log=item.sync_log, indexes=item.sync_indexes)
            if self.checkpoint_path is not None:
                write_checkpoint(self.storage, self.checkpoint_path, [str(self.target_offset)])
        except OSError as error:
            self.error = error
        finally:
            self.ran = True
