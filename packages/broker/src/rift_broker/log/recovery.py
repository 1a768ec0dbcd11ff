"""Recovery: turn a partition directory, as a crash left it, into a consistent log.

Theory of operation. The log keeps one invariant across crashes: *every offset
below the recovery point is durable and was validated*. The recovery point is
persisted (``recovery-point`` checkpoint) after a flush has made closed segments
durable, and on clean close. Bytes at or above it may be torn, missing or garbage
— they were never acknowledged as durable.

Opening a directory:

1. Leftovers go: temporary checkpoint files, index files without a ``.log``, and
   segments wholly below the persisted log start offset (retention persisted the
   new start, then crashed before deleting them).
2. Each segment, oldest first, loads its indexes (a torn trailing entry is dropped;
   out-of-order entries or entries past the file end mean the index is rebuilt),
   then re-reads its log from the last index entry that still points at a whole,
   CRC-valid batch with the right offset, validating every batch to the end and
   re-making index entries. Each segment must start where the previous one ended.
3. At the first invalid batch (torn, bad CRC, bad magic or length, wrong offset):
   - in the *active* (last) segment: truncate there — a torn tail;
   - in a *closed* segment, at an offset at or above the recovery point: the
     crash hit a segment that had rolled before it was synced; truncate there and
     delete every later segment (their offsets would no longer follow on);
   - in a closed segment below the recovery point: data that was durable is
     damaged. Recovery refuses to guess: it raises :class:`CorruptBatchError`
     naming the file and byte position. An operator decides (restore, or delete
     from that segment on and let replication refill it).
   Every truncation, deletion and index rebuild is recorded in the returned
   :class:`RecoveryReport`, which the partition log exposes as
   ``recovery_report``.

Known limit: batches before a segment's last valid index entry are trusted
without a CRC check (the entry was only made durable after the data it points
at), so bit rot there is found by consumers' CRC checks, not at open.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rift_broker.log.checkpoint import TEMP_SUFFIX, read_offset_checkpoint
from rift_broker.log.config import LogConfig
from rift_broker.log.errors import CorruptBatchError
from rift_broker.log.segment import Segment, TailProblem
from rift_broker.storage import Storage

__all__ = [
    "RecoveryEvent",
    "RecoveryReport",
    "RecoveredLog",
    "recover",
    "RECOVERY_POINT_FILE",
    "LOG_START_FILE",
    "EPOCH_FILE",
]

RECOVERY_POINT_FILE = "recovery-point"
LOG_START_FILE = "log-start-offset"
EPOCH_FILE = "leader-epoch-checkpoint"
_INDEX_SUFFIXES = (".index", ".timeindex")


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoveryEvent:
    action: str  # "truncated", "deleted", "index-rebuilt"
    path: str
    position: int | None = None
    reason: str = ""


@dataclass(slots=True, kw_only=True)
class RecoveryReport:
    events: list[RecoveryEvent] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.events


@dataclass(slots=True, kw_only=True)
class RecoveredLog:
    segments: list[Segment]
    log_start_offset: int
    recovery_point: int
    report: RecoveryReport


def _parse_base(name: str) -> int | None:
    stem, _, suffix = name.partition(".")
    if len(stem) == 20 and stem.isdigit() and suffix == "log":
        return int(stem)
    return None


def recover(*, storage: Storage, directory: str, config: LogConfig) -> RecoveredLog:
    storage.make_dirs(directory)
    report = RecoveryReport()
    names = storage.list_dir(directory)
    bases = sorted(base for name in names if (base := _parse_base(name)) is not None)
    stems = {f"{base:020d}" for base in bases}
    for name in names:
        orphan_index = name.endswith(_INDEX_SUFFIXES) and name.split(".")[0] not in stems
        if name.endswith(TEMP_SUFFIX) or orphan_index:
            storage.delete(f"{directory}/{name}")
            report.events.append(RecoveryEvent(action="deleted", path=f"{directory}/{name}"))

    recovery_point = read_offset_checkpoint(storage, f"{directory}/{RECOVERY_POINT_FILE}") or 0
    start_checkpoint = read_offset_checkpoint(storage, f"{directory}/{LOG_START_FILE}")
    if not bases:
        bases = [start_checkpoint or 0]

    def open_segment(base: int) -> Segment:
        return Segment(
            storage=storage,
            directory=directory,
            base_offset=base,
            index_interval_bytes=config.index_interval_bytes,
        )

    segments = [open_segment(base) for base in bases]
    # Segments wholly below the persisted start: retention crashed before deleting.
    if start_checkpoint is not None:
        while len(segments) > 1 and segments[1].base_offset <= start_checkpoint:
            _delete(segments.pop(0), report, reason="below the log start offset")

    kept: list[Segment] = []
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if kept and segment.base_offset != kept[-1].next_offset:
            previous = kept[-1]
            gap = TailProblem(
                position=previous.size,
                offset=previous.next_offset,
                reason=f"next segment starts at offset {segment.base_offset}",
            )
            if gap.offset < recovery_point:
                raise CorruptBatchError(gap.reason, path=previous.path, position=gap.position)
            for doomed in segments[i:]:
                _delete(doomed, report, reason=gap.reason)
            break
        damage = segment.load_indexes()
        if damage is not None:
            report.events.append(
                RecoveryEvent(action="index-rebuilt", path=segment.path, reason=damage)
            )
        problem = segment.recover()
        kept.append(segment)
        if problem is None:
            continue
        if not last and problem.offset < recovery_point:
            raise CorruptBatchError(problem.reason, path=segment.path, position=problem.position)
        segment.truncate_at(problem.position)
        report.events.append(
            RecoveryEvent(
                action="truncated",
                path=segment.path,
                position=problem.position,
                reason=problem.reason,
            )
        )
        for doomed in segments[i + 1 :]:
            _delete(doomed, report, reason=f"follows a truncated segment: {problem.reason}")
        break

    log_end = kept[-1].next_offset
    log_start = max(kept[0].base_offset, start_checkpoint or 0)
    return RecoveredLog(
        segments=kept,
        log_start_offset=min(log_start, log_end),
        recovery_point=min(recovery_point, log_end),
        report=report,
    )


def _delete(segment: Segment, report: RecoveryReport, *, reason: str) -> None:
    segment.delete()
    report.events.append(RecoveryEvent(action="deleted", path=segment.path, reason=reason))
