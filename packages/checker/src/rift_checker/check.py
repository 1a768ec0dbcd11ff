"""The checker's entry point: a history in, a :class:`~rift_checker.results.Result` out."""

from __future__ import annotations

import gc
from collections.abc import Callable

from rift_checker._analyzer import analyze
from rift_checker._cycles import find_cycles
from rift_checker._finish import finish_skips, finish_writes
from rift_checker._state import LogState
from rift_checker.config import CHECKS, CheckConfig
from rift_checker.reader import HistoryReader, HistorySource
from rift_checker.results import CheckResult, Result, Status, Validity
from rift_checker.stats import Stats

__all__ = ["check_history"]

_DEFAULT = CheckConfig()


def check_history(
    source: HistorySource,
    *,
    config: CheckConfig = _DEFAULT,
    on_read: Callable[[int], object] | None = None,
) -> Result:
    """Check a history (a path, an open text stream, or its lines) against the log model.

    Streams the file once; memory grows with the number of distinct values and
    offsets, not with the size of the file. ``on_read`` is told the size of each
    read of a history file, for a progress display. Raises
    :class:`~rift_checker.errors.InvalidHistory` (with the line number) if the
    history breaks the schema.
    """
    # The pass allocates millions of long-lived objects and no reference cycles; the
    # cyclic GC would rescan them over and over (superlinear time), and the first
    # collection after it is enabled again would visit them all once more. So it
    # stays off until the state is gone (it is local to _check).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _check(source, config, on_read)
    finally:
        if gc_was_enabled:
            gc.enable()


def _check(
    source: HistorySource, config: CheckConfig, on_read: Callable[[int], object] | None
) -> Result:
    with HistoryReader(source, on_read=on_read) as reader:
        state = LogState(path=reader.path, max_cases=config.max_cases)
        stats = Stats()
        analyze(reader.line_batches(model=True), state, stats)
        header = reader.header
        path = reader.path
    unknown_writes = finish_writes(state)
    finish_skips(state)
    find_cycles(state)
    reasons: list[str] = []
    if unknown_writes:
        reasons.append(
            f"{unknown_writes} acknowledged send(s) were never read and no final read covered "
            "their partitions: lost or merely late cannot be told (add a final-read)"
        )
    results: list[CheckResult] = []
    for name, description in CHECKS.items():
        count = state.counts.get(name, 0)
        unknown = unknown_writes if name == "unseen" else 0
        status: Status
        if name not in config.checks:
            status = "skipped"
        elif count and name in config.tolerate:
            status = "tolerated"
        elif count:
            status = "anomaly"
        elif unknown:
            status = "unknown"
        else:
            status = "ok"
        skipped = status == "skipped"
        results.append(
            CheckResult(
                name=name,
                description=description,
                status=status,
                count=0 if skipped else count,
                unknown=0 if skipped else unknown,
                cases=() if skipped else tuple(state.cases.get(name, ())),
            )
        )
    valid: Validity = True
    if any(r.status == "anomaly" for r in results):
        valid = False
    elif any(r.status == "unknown" for r in results):
        valid = "unknown"
    return Result(
        valid=valid,
        checks=tuple(results),
        statistics=stats.to_dict(),
        header=header,
        history=path,
        unknown_reasons=tuple(reasons) if "unseen" in config.checks else (),
    )
