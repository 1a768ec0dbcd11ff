"""The partition log: an ordered list of segments with one active segment at the end.

Theory of operation. Offsets are assigned densely: ``log_end_offset`` is the next
offset to hand out, ``log_start_offset`` the first one still readable. The leader
path (:meth:`PartitionLog.append`) validates one batch (header, magic, CRC-32C),
stamps ``base offset = log_end_offset`` and the leader epoch in place, and writes
it to the active segment, rolling first if the segment is full, old, or the batch's
offsets would not fit a 32-bit relative offset. The follower path
(:meth:`PartitionLog.append_replicated`) writes batches whose offsets and epochs
the leader already assigned. Nothing is durable until a flush (see ``flush.py``);
``flushed_offset`` says how far durability reaches. A failed fsync stops the log
for good: the kernel may have dropped the dirty pages, so a retry could report
success for lost data.

Side files in the partition directory, each replaced atomically:
``leader-epoch-checkpoint`` (written when an epoch starts or is truncated away),
``log-start-offset`` (written before retention deletes segments, when a follower
advances its start to its leader's, or restarts its log there) and
``recovery-point`` (see ``recovery.py``). The log is not thread-safe: drive it
from one thread, except ``FlushTicket.run``.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass

from rift_broker.log import retention
from rift_broker.log.checkpoint import read_checkpoint, write_checkpoint
from rift_broker.log.config import LogConfig
from rift_broker.log.epoch_cache import LeaderEpochCache
from rift_broker.log.errors import (
    BatchTooLargeError,
    CorruptBatchError,
    InvalidEpochError,
    LogStoppedError,
    OffsetOutOfRangeError,
    UnexpectedOffsetError,
)
from rift_broker.log.flush import FlushTicket, FlushWork
from rift_broker.log.recovery import (
    EPOCH_FILE,
    LOG_START_FILE,
    RECOVERY_POINT_FILE,
    RecoveryReport,
    recover,
)
from rift_broker.log.segment import Segment
from rift_broker.records import (
    BatchHeader,
    InvalidBatchError,
    iter_batches,
    stamp_batch,
    validate_batch,
)
from rift_broker.storage import Storage

__all__ = ["PartitionLog", "AppendInfo"]

_MAX_RELATIVE_OFFSET = 0xFFFFFFFF


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendInfo:
    base_offset: int
    last_offset: int
    max_timestamp: int
    log_append_time_ms: int  # -1 unless the batch uses LogAppendTime (Kafka's convention)
    position: int  # byte position of the (first) batch in its segment file


class PartitionLog:
    """One partition's log in one directory. Create with :meth:`open`."""

    def __init__(self, *, directory: str, config: LogConfig, storage: Storage, now_ms: int):
        self.directory = directory
        self.config = config
        self._storage = storage
        recovered = recover(storage=storage, directory=directory, config=config)
        self._segments: list[Segment] = recovered.segments
        self._bases = [segment.base_offset for segment in self._segments]
        self._log_start = recovered.log_start_offset
        self._recovery_point = recovered.recovery_point
        self.recovery_report: RecoveryReport = recovered.report
        self._stopped: BaseException | None = None
        self._closed = False
        touched = {event.path for event in recovered.report.events}
        for segment in self._segments:
            segment.rolling_ms = now_ms
            if segment.next_offset <= self._recovery_point and segment.path not in touched:
                segment.synced_size = segment.size
                segment.indexes_synced = True
            else:
                segment.synced_size = -1  # unknown: the flush below fsyncs it
        self._flushed = self._recovery_point
        self._epochs = self._load_epochs()
        # Make whatever recovery kept durable, and the recovery point with it.
        self.flush(final=True)

    @classmethod
    def open(
        cls, directory: str, *, config: LogConfig, storage: Storage, now_ms: int
    ) -> PartitionLog:
        """Open (or create) the log in ``directory``, running recovery first."""
        return cls(directory=directory, config=config, storage=storage, now_ms=now_ms)

    # -- state --

    @property
    def log_start_offset(self) -> int:
        return self._log_start

    @property
    def log_end_offset(self) -> int:
        return self._segments[-1].next_offset

    @property
    def flushed_offset(self) -> int:
        return self._flushed

    @property
    def leader_epoch_cache(self) -> LeaderEpochCache:
        return self._epochs

    @property
    def latest_epoch(self) -> int | None:
        return self._epochs.latest_epoch

    @property
    def segment_base_offsets(self) -> tuple[int, ...]:
        return tuple(self._bases)

    @property
    def size_bytes(self) -> int:
        return sum(segment.size for segment in self._segments)

    @property
    def stopped(self) -> bool:
        return self._stopped is not None or self._closed

    def _check(self) -> None:
        if self._stopped is not None:
            raise LogStoppedError(
                f"log {self.directory} stopped after a failed fsync ({self._stopped}); "
                "restart to recover it from disk"
            )
        if self._closed:
            raise LogStoppedError(f"log {self.directory} is closed")

    # -- appending --

    def append(self, batch: bytes | bytearray, *, leader_epoch: int, now_ms: int) -> AppendInfo:
        """Leader path: validate, assign offsets, stamp and write one batch (unsynced)."""
        self._check()
        if len(batch) > self.config.max_batch_bytes:
            raise BatchTooLargeError(
                f"batch of {len(batch)} bytes exceeds max_batch_bytes={self.config.max_batch_bytes}"
            )
        header = _validated(batch)
        if header.size != len(batch):
            raise CorruptBatchError(
                f"{len(batch)} bytes hold more than one batch ({header.size} bytes); "
                "append one batch at a time"
            )
        if header.record_count != header.last_offset_delta + 1:
            raise CorruptBatchError(
                f"recordCount {header.record_count} does not match "
                f"lastOffsetDelta {header.last_offset_delta}"
            )
        if leader_epoch < 0:
            raise InvalidEpochError(f"leader_epoch must be >= 0, got {leader_epoch}")
        latest = self._epochs.latest_epoch
        if latest is not None and leader_epoch < latest:
            raise InvalidEpochError(f"leader epoch {leader_epoch} is older than {latest}")
        base = self.log_end_offset
        buf = batch if isinstance(batch, bytearray) else bytearray(batch)
        stamp_batch(buf, base_offset=base, partition_leader_epoch=leader_epoch)
        header = header.stamped(base_offset=base, partition_leader_epoch=leader_epoch)
        if self._epochs.assign(epoch=leader_epoch, start_offset=base):
            self._persist_epochs()
        position = self._write(buf, header, now_ms)
        return AppendInfo(
            base_offset=base,
            last_offset=header.last_offset,
            max_timestamp=header.max_timestamp,
            log_append_time_ms=now_ms if header.is_log_append_time else -1,
            position=position,
        )

    def append_replicated(self, batches: bytes, *, now_ms: int) -> AppendInfo | None:
        """Follower path: write batches as the leader assigned them; None if empty."""
        self._check()
        try:
            found = list(iter_batches(batches))
        except InvalidBatchError as error:
            raise CorruptBatchError(error.reason, position=error.position) from None
        if not found:
            return None
        expected = self.log_end_offset
        epoch = self._epochs.latest_epoch
        for position, header in found:
            if header.base_offset != expected:
                raise UnexpectedOffsetError(
                    f"batch at byte {position} starts at offset {header.base_offset}, "
                    f"the log ends at {expected}"
                )
            if header.partition_leader_epoch >= 0:
                if epoch is not None and header.partition_leader_epoch < epoch:
                    raise InvalidEpochError(
                        f"batch at offset {header.base_offset} has leader epoch "
                        f"{header.partition_leader_epoch}, older than {epoch}"
                    )
                epoch = header.partition_leader_epoch
            expected = header.next_offset
        view = memoryview(batches)
        first_position = -1
        for position, header in found:
            if header.partition_leader_epoch >= 0 and self._epochs.assign(
                epoch=header.partition_leader_epoch, start_offset=header.base_offset
            ):
                self._persist_epochs()
            written = self._write(view[position : position + header.size], header, now_ms)
            if first_position < 0:
                first_position = written
        return AppendInfo(
            base_offset=found[0][1].base_offset,
            last_offset=found[-1][1].last_offset,
            max_timestamp=max(header.max_timestamp for _, header in found),
            log_append_time_ms=-1,
            position=first_position,
        )

    def _write(self, data: bytes | bytearray | memoryview, header: BatchHeader, now_ms: int) -> int:
        segment = self._segments[-1]
        if not segment.is_empty and (
            segment.size + header.size > self.config.segment_bytes
            or now_ms - segment.rolling_ms >= self.config.segment_ms
            or header.last_offset - segment.base_offset > _MAX_RELATIVE_OFFSET
        ):
            segment = self._roll(now_ms)
        if segment.is_empty:
            segment.rolling_ms = now_ms
        return segment.append(data, header)

    def maybe_roll(self, now_ms: int) -> bool:
        """Roll the active segment if it is non-empty and older than ``segment_ms``."""
        self._check()
        active = self._segments[-1]
        if active.is_empty or now_ms - active.rolling_ms < self.config.segment_ms:
            return False
        self._roll(now_ms)
        return True

    def _roll(self, now_ms: int) -> Segment:
        segment = Segment(
            storage=self._storage,
            directory=self.directory,
            base_offset=self.log_end_offset,
            index_interval_bytes=self.config.index_interval_bytes,
        )
        if not segment.is_empty:  # a stale file under the new name: never ours to keep
            segment.truncate_at(0)
        segment.rolling_ms = now_ms
        self._segments.append(segment)
        self._bases.append(segment.base_offset)
        return segment

    # -- reading --

    def read(self, offset: int, *, max_bytes: int, max_offset: int | None = None) -> bytes:
        """Whole batches from the one holding ``offset``, up to ``max_bytes`` (at least one).

        Never returns a batch based at or beyond ``max_offset`` (the high watermark).
        """
        self._check()
        end = self.log_end_offset
        if not self._log_start <= offset <= end:
            raise OffsetOutOfRangeError(
                f"offset {offset} is outside the log [{self._log_start}, {end}]"
            )
        limit = end if max_offset is None else min(max_offset, end)
        if offset == end:
            return b""
        index = bisect.bisect_right(self._bases, offset) - 1
        position = self._segments[index].locate(offset)
        parts: list[bytes] = []
        remaining = max_bytes
        for segment in self._segments[index:]:
            if position is None or position >= segment.size:
                position = 0
                continue
            data = segment.read(
                position, max_bytes=remaining, max_offset=limit, at_least_one=not parts
            )
            if data:
                parts.append(data)
                remaining -= len(data)
            if position + len(data) < segment.size or remaining <= 0:
                break
            position = 0
        return b"".join(parts)

    def batches_headers(
        self, *, from_offset: int | None = None
    ) -> Iterator[tuple[int, BatchHeader]]:
        """``(position in its segment file, header)`` of every batch from ``from_offset``."""
        self._check()
        start = self._log_start if from_offset is None else from_offset
        index = max(bisect.bisect_right(self._bases, start) - 1, 0)
        for segment in list(self._segments[index:]):
            for position, header in segment.headers():
                if header.last_offset >= start:
                    yield position, header

    def offset_for_timestamp(self, timestamp: int) -> tuple[int, int] | None:
        """``(offset, max timestamp)`` of the first batch with a record at or after ``timestamp``.

        Batch granularity: the offset is the batch's base offset (records are not
        decoded), so it may precede the first matching record within that batch.
        """
        self._check()
        for segment in self._segments:
            if segment.max_timestamp >= timestamp:
                header = segment.find_timestamp(timestamp)
                if header is not None and header.last_offset >= self._log_start:
                    return max(header.base_offset, self._log_start), header.max_timestamp
        return None

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        """OffsetForLeaderEpoch: ``(largest epoch <= epoch, its end)``; (-1, -1) if unknown."""
        self._check()
        return self._epochs.end_offset_for(epoch, log_end_offset=self.log_end_offset)

    # -- durability --

    def begin_flush(self, *, final: bool = False) -> FlushTicket:
        """Snapshot what the next fsync must cover (see ``flush.py``)."""
        self._check()
        work: list[FlushWork] = []
        closed_synced = False
        active = self._segments[-1]
        for segment in self._segments:
            sync_log = segment.size > segment.synced_size
            sync_indexes = (segment is not active or final) and not segment.indexes_synced
            if sync_log or sync_indexes:
                work.append(
                    FlushWork(
                        segment=segment,
                        log_size=segment.size,
                        sync_log=sync_log,
                        sync_indexes=sync_indexes,
                    )
                )
                closed_synced = closed_synced or segment is not active
        target = self.log_end_offset
        checkpoint = None
        if target != self._recovery_point and (closed_synced or final):
            checkpoint = f"{self.directory}/{RECOVERY_POINT_FILE}"
        return FlushTicket(
            storage=self._storage, work=work, target_offset=target, checkpoint_path=checkpoint
        )

    def complete_flush(self, ticket: FlushTicket) -> None:
        """Account for a ticket that has run; raises LogStoppedError if its fsync failed."""
        if ticket.error is not None:
            self._stopped = ticket.error
            raise LogStoppedError(
                f"fsync failed in {self.directory}: {ticket.error}; the log is stopped"
            ) from ticket.error
        self._check()
        for item in ticket.work:
            if item.sync_log:
                item.segment.synced_size = max(item.segment.synced_size, item.log_size)
            if item.sync_indexes:
                item.segment.indexes_synced = True
        target = min(ticket.target_offset, self.log_end_offset)
        self._flushed = max(self._flushed, target)
        if ticket.checkpoint_path is not None:
            self._recovery_point = target

    def flush(self, *, final: bool = False) -> None:
        """fsync everything written so far; on failure stop the log and raise."""
        ticket = self.begin_flush(final=final)
        if ticket.fsyncs_needed:
            ticket.run()
        self.complete_flush(ticket)

    # -- truncation and retention --

    def truncate_to(self, offset: int) -> None:
        """Drop every batch at or after the one holding ``offset`` (follower divergence).

        The new log end is the base offset of the batch holding ``offset`` (equal to
        ``offset`` when it is a batch boundary, as replication always asks). Durable
        on return, with everything before it (it ends with a flush).
        """
        self._check()
        if offset >= self.log_end_offset:
            return
        if offset < self._log_start:
            raise OffsetOutOfRangeError(
                f"cannot truncate to {offset}, below the log start {self._log_start}"
            )
        index = bisect.bisect_right(self._bases, offset) - 1
        segment = self._segments[index]
        position = segment.locate(offset)
        end = segment.next_offset if position is None else segment.header_at(position).base_offset
        if self._recovery_point > end:
            # Lower the recovery point first: a crash mid-truncation must not make
            # recovery treat the cut as corruption of durable data.
            write_checkpoint(self._storage, f"{self.directory}/{RECOVERY_POINT_FILE}", [str(end)])
            self._recovery_point = end
        for later in self._segments[index + 1 :]:
            later.delete()
        del self._segments[index + 1 :]
        del self._bases[index + 1 :]
        if position is not None:
            segment.truncate_at(position)
        self._log_start = min(self._log_start, end)
        self._flushed = min(self._flushed, end)
        if self._epochs.truncate_from_end(end):
            self._persist_epochs()
        # The truncation must be durable before anyone acts on it; fsyncing the
        # truncated file makes what precedes it durable too, so flush everything.
        segment.synced_size = -1
        self.flush()

    def apply_retention(self, now_ms: int, *, max_offset: int | None = None) -> int:
        """Delete whole expired or excess segments (never the active one); return how many.

        With ``max_offset`` (a replica's high watermark), only segments whose every
        offset is below it may go.
        """
        self._check()
        count = retention.deletable_segments(
            [
                retention.SegmentStats(
                    base_offset=s.base_offset, size=s.size, max_timestamp=s.max_timestamp
                )
                for s in self._segments
            ],
            config=self.config,
            now_ms=now_ms,
            log_start_offset=self._log_start,
            max_offset=max_offset,
        )
        if count == 0:
            return 0
        new_start = max(self._log_start, self._bases[count])
        # Persist the new start before deleting, so a crash between cannot resurrect data.
        self._move_log_start(new_start)
        self._flushed = max(self._flushed, new_start)  # nothing below the start to lose
        for segment in self._segments[:count]:
            segment.delete()
        del self._segments[:count]
        del self._bases[:count]
        return count

    def advance_log_start(self, offset: int) -> bool:
        """Move the log start up to ``offset`` (a follower following its leader's start).

        Records below it become unreadable at once; the segments wholly below it go
        at the next :meth:`apply_retention`. Returns whether the start moved.
        ``offset`` must not pass the flushed offset: a start beyond durable data
        would promise records a crash can take back.
        """
        self._check()
        if offset <= self._log_start:
            return False
        if offset > self._flushed:
            raise OffsetOutOfRangeError(
                f"cannot start the log at {offset}, beyond its flushed offset {self._flushed}"
            )
        self._move_log_start(offset)
        return True

    def _move_log_start(self, offset: int) -> None:
        """Persist ``offset`` as the log start, then adopt it (epochs below it go)."""
        write_checkpoint(self._storage, f"{self.directory}/{LOG_START_FILE}", [str(offset)])
        self._log_start = offset
        if self._epochs.truncate_from_start(offset):
            self._persist_epochs()

    def truncate_fully_and_start_at(self, offset: int, *, now_ms: int) -> None:
        """Drop every record and restart the log, empty, at ``offset``.

        A follower does this when its leader's log starts beyond the follower's end
        (retention deleted what the follower still had to fetch): nothing it holds
        can be kept contiguous with what it fetches next. Durable on return. Crash
        safety: the new start is persisted first, so recovery deletes whichever old
        segments survive a crash (they lie wholly below it).
        """
        self._check()
        if offset < self.log_end_offset:
            raise OffsetOutOfRangeError(
                f"cannot restart the log at {offset}, below its end {self.log_end_offset}"
            )
        write_checkpoint(self._storage, f"{self.directory}/{LOG_START_FILE}", [str(offset)])
        write_checkpoint(self._storage, f"{self.directory}/{RECOVERY_POINT_FILE}", [str(offset)])
        for old in self._segments:
            old.delete()
        segment = Segment(
            storage=self._storage,
            directory=self.directory,
            base_offset=offset,
            index_interval_bytes=self.config.index_interval_bytes,
        )
        if not segment.is_empty:  # a stale file under the new name: never ours to keep
            segment.truncate_at(0)
        segment.rolling_ms = now_ms
        self._segments = [segment]
        self._bases = [offset]
        self._log_start = offset
        self._recovery_point = offset
        self._flushed = offset
        self._epochs = LeaderEpochCache()
        self._persist_epochs()
        segment.synced_size = -1
        self.flush()

    # -- epochs --

    def _load_epochs(self) -> LeaderEpochCache:
        lines = read_checkpoint(self._storage, f"{self.directory}/{EPOCH_FILE}")
        cache = LeaderEpochCache.decode(lines) if lines is not None else None
        changed = cache is None
        if cache is None:  # missing or damaged: rebuild from batch headers
            cache = LeaderEpochCache()
            for segment in self._segments:
                for _, header in segment.headers():
                    epoch = header.partition_leader_epoch
                    if epoch >= 0 and (cache.latest_epoch is None or epoch > cache.latest_epoch):
                        cache.assign(epoch=epoch, start_offset=header.base_offset)
        changed |= cache.truncate_from_end(self.log_end_offset)
        changed |= cache.truncate_from_start(self._log_start)
        self._epochs = cache
        if changed:
            self._persist_epochs()
        return cache

    def _persist_epochs(self) -> None:
        write_checkpoint(self._storage, f"{self.directory}/{EPOCH_FILE}", self._epochs.encode())

    # -- lifecycle --

    def close(self) -> None:
        """Flush (unless stopped), persist the recovery point and release the files."""
        if self._closed:
            return
        try:
            if self._stopped is None:
                self.flush(final=True)
        finally:
            self._closed = True
            for segment in self._segments:
                segment.close()


def _validated(batch: bytes | bytearray) -> BatchHeader:
    try:
        return validate_batch(batch)
    except InvalidBatchError as error:
        raise CorruptBatchError(error.reason, position=error.position) from None
