"""Decisions that need the whole history: lost, unseen, failed-write-read, poll-skip.

Run once after the streaming pass, over the compact state only.

* An acknowledged value that no read returned is **lost** if some read of its
  partition returned a higher offset (the log moved past it without it), else
  **unseen** if a final read covered its partition, else *unknown*: without a final
  read, loss cannot be told from delay. One below the log start a final read
  reported for its partition was deleted by retention before anyone read it: it is
  neither (whether retention may have deleted it is the system's own invariant).
* A gap between two consecutive offsets a process read (within one poll, or across
  its polls since its last assign/subscribe) is a **poll skip** only if an offset in
  the gap is known to hold a value; logs may legitimately have holes (transaction
  markers, compaction).
"""

from __future__ import annotations

from bisect import bisect_right

from rift_checker._state import LogState

__all__ = ["finish_writes", "finish_skips"]


def finish_writes(st: LogState) -> int:
    """Add lost-write, unseen and failed-write-read cases; return the unknown count."""
    read = st.read
    unknown = 0
    for v, (tp, offset) in st.acked.items():  # in ack order
        if v in read or offset < st.final_start.get(tp, 0):
            continue
        top, reader = st.max_read[tp]
        name = st.tp_names[tp]
        if top > offset:
            st.case(
                "lost-write",
                (st.sent[v], reader),
                f"the send of {v!r} was acknowledged at offset {offset} of {name} but never "
                f"read, although op {reader} read up to offset {top}",
            )
        elif tp in st.final_tps:
            st.case(
                "unseen",
                (st.sent[v],),
                f"the send of {v!r} was acknowledged at offset {offset} of {name} but no read "
                "returned it, not even the final read",
            )
        else:
            unknown += 1
    for v, op in st.failed.items():
        first = read.get(v)
        if first is not None:
            st.case(
                "failed-write-read",
                (op, first),
                f"the send of {v!r} completed fail, yet op {first} read it",
            )
    return unknown


def finish_skips(st: LogState) -> None:
    """Turn the gaps recorded during the pass into poll-skip cases where proven."""
    known: dict[int, list[int]] = {}
    for tp, lo, hi, before, after in st.gaps:
        offsets = known.get(tp)
        if offsets is None:
            offsets = known[tp] = sorted(st.val_at[tp])
        i = bisect_right(offsets, lo)
        if i == len(offsets) or offsets[i] >= hi:
            continue
        missing = offsets[i]
        value = st.val_at[tp][missing]
        shown_by = st.shown_by(tp, missing)
        ops = tuple(dict.fromkeys((before, after, shown_by)))
        where = "within one poll" if before == after else "between two polls of one process"
        st.case(
            "poll-skip",
            ops,
            f"a read went from offset {lo} to {hi} of {st.tp_names[tp]} {where}, skipping "
            f"offset {missing}, which holds {value!r} (shown by op {shown_by})",
        )
