"""The compact state the checker keeps about a log while it streams a history.

Everything is keyed by partition id (a small int per ``"topic/partition"``),
offset and value, and refers to operations by op id only. Per written value the
state holds a handful of dict entries, which is what keeps a 1,000,000-op history
well under the memory bar; no op objects are kept.

Invariants: ``val_at[tp][o]`` is the first value seen at offset ``o`` of ``tp``
(by a send's ack or a read) and :meth:`LogState.shown_by` the op that showed it;
:meth:`LogState.first_seen` is the first ``(tp, offset, op)`` at which value ``v``
was seen. Most values are first seen by their own ack, at the offset where they
are first seen: for those, ``acked`` and ``sent`` already say all of it, so
``val_op`` and ``where`` hold only the other sightings, which keeps the common
case to fewer dict entries. ``touch[tp][o]`` is the read (``~id``) that first
completed with ``o`` as its highest offset in ``tp``; with the acks (``acked``,
``done_at``) it gives the op that first completed having shown offset ``o``.
``reach_top[tp]`` and ``reach_done[tp]`` are the steps of "the highest offset of
``tp`` shown so far" (by an ack, or as the highest offset of a read): from the
completion index ``reach_done[tp][i]`` on, it was ``reach_top[tp][i]``; both lists
increase. ``suspects`` holds the partitions where a write was found to sit at or
below an offset shown before the write was invoked (see :mod:`rift_checker._cycles`).
"""

from __future__ import annotations

from array import array
from typing import Any

from rift_checker.history import split_tp
from rift_checker.results import Case

__all__ = ["LogState"]


class LogState:
    """Mutable accumulator shared by the streaming pass and the final decisions."""

    def __init__(self, *, path: str | None, max_cases: int) -> None:
        self.path = path
        self.max_cases = max_cases
        self.tps: dict[str, int] = {}
        self.tp_pairs: dict[tuple[str, int], int] = {}  # (topic, partition) -> tp id
        self.tp_names: list[str] = []
        self.val_at: list[dict[int, Any]] = []
        self.val_op: list[dict[int, int]] = []
        self.touch: list[dict[int, int]] = []
        self.reach_top: list[list[int]] = []
        self.reach_done: list[list[int]] = []
        self.suspects: set[int] = set()
        self.max_read: list[tuple[int, int]] = []  # per tp: (highest offset read, op)
        self.where: dict[Any, tuple[int, int, int]] = {}
        self.sent: dict[Any, int] = {}  # value -> send op id, whatever the outcome
        self.acked: dict[Any, tuple[int, int]] = {}  # value -> (tp, offset) of an ok send
        self.failed: dict[Any, int] = {}  # value -> send op id that completed fail
        self.unknown: dict[Any, int] = {}  # value -> send op id that ended info (or never)
        self.read: dict[Any, int] = {}  # value -> first op that read it
        self.final_tps: set[int] = set()
        # per tp: the highest log start a final read reported (retention deleted below)
        self.final_start: dict[int, int] = {}
        self.gaps: list[tuple[int, int, int, int, int]] = []  # tp, lo, hi, op before, op after
        self.last_send: list[dict[Any, tuple[int, int]]] = []  # per tp: process -> (offset, op)
        self.positions: dict[Any, dict[int, tuple[int, int]]] = {}
        # per tp: (completion index, offset, op id) of each acknowledged commit that
        # raised the highest committed offset, in completion order
        self.commits: dict[int, list[tuple[int, int, int]]] = {}
        self.leaders: dict[tuple[str, int], dict[str, int]] = {}
        self.hw: dict[str, tuple[int, int, int | None]] = {}  # offset, op, epoch
        self.done_at: array[int] = array("q")  # op id -> completion index (0: none)
        self.cases: dict[str, list[Case]] = {}
        self.counts: dict[str, int] = {}
        self._reported: set[tuple[Any, ...]] = set()

    def tp_id(self, key: str) -> int:
        """The id of partition ``key`` ("topic/partition"), or -1 if the key is malformed."""
        tp = self.tps.get(key)
        if tp is not None:
            return tp
        try:
            topic, partition = split_tp(key)
        except ValueError:
            return -1
        canonical = f"{topic}/{partition}"  # "t/007" and "t/7" are one partition
        tp = self.tps.get(canonical)
        if tp is None:
            tp = self.tps[canonical] = len(self.tp_names)
            self.tp_names.append(canonical)
            self.val_at.append({})
            self.val_op.append({})
            self.touch.append({})
            self.reach_top.append([])
            self.reach_done.append([])
            self.max_read.append((-1, -1))
            self.last_send.append({})
        self.tps[key] = tp
        return tp

    def tp_of(self, topic: str, partition: int) -> int:
        """The id of a partition named by a valid topic and an integer partition >= 0."""
        tp = self.tp_pairs.get((topic, partition))
        if tp is None:
            tp = self.tp_pairs[topic, partition] = self.tp_id(f"{topic}/{partition}")
        return tp

    def shown_by(self, tp: int, offset: int) -> int:
        """The op that showed the first value known at ``offset`` of ``tp``."""
        op = self.val_op[tp].get(offset)
        return self.sent[self.val_at[tp][offset]] if op is None else op

    def first_seen(self, value: Any) -> tuple[int, int, int] | None:
        """The first ``(tp, offset, op)`` at which ``value`` was seen, if it was."""
        first = self.where.get(value)
        if first is None:
            ack = self.acked.get(value)
            if ack is not None:
                return (ack[0], ack[1], self.sent[value])
        return first

    def place(self, tp: int, offset: int, value: Any, op: int) -> None:
        """Record that ``op`` showed ``value`` at ``offset`` of ``tp``; flag conflicts."""
        vat = self.val_at[tp]
        had = vat.get(offset)
        if had is None:
            vat[offset] = value
            self.val_op[tp][offset] = op
        elif had != value and ("io", tp, offset, value) not in self._reported:
            self._reported.add(("io", tp, offset, value))
            self.case(
                "inconsistent-offsets",
                (self.shown_by(tp, offset), op),
                f"offset {offset} of {self.tp_names[tp]} holds {had!r} and also {value!r}",
            )
        first = self.first_seen(value)
        if first is None:
            self.where[value] = (tp, offset, op)
        elif (first[0] != tp or first[1] != offset) and ("dup", value, tp, offset) not in (
            self._reported
        ):
            self._reported.add(("dup", value, tp, offset))
            self.case(
                "duplicate",
                (first[2], op),
                f"value {value!r} is at offset {first[1]} of {self.tp_names[first[0]]} "
                f"and also at offset {offset} of {self.tp_names[tp]}",
            )

    def case(
        self, check: str, ops: tuple[int, ...], explanation: str, *, steps: tuple[str, ...] = ()
    ) -> None:
        """Count a case of ``check``; keep it if fewer than ``max_cases`` are kept."""
        self.counts[check] = self.counts.get(check, 0) + 1
        kept = self.cases.setdefault(check, [])
        if len(kept) < self.max_cases:
            kept.append(Case(check=check, ops=ops, explanation=explanation, steps=steps))
