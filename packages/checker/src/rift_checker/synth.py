"""Valid histories from a model log, for tests and the benchmark.

:func:`generate_history` drives a handful of concurrent workers against an
in-memory model of a partitioned log that never misbehaves: a send is appended at
its completion (which lies inside its invoke-completion interval), a poll reads
what the model holds when it completes, an ``info`` send lands or not at random,
a ``fail`` send never lands. Workers interleave invokes and completions at random,
a worker whose op ended ``info`` continues as a fresh process, and a final read
returns every partition from offset 0. Observations report leaders with rising
epochs and rising high watermarks. Every check must pass what this writes.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import IO, Any

from rift_checker.history import ASSIGN, FINAL_READ, HIGH_WATERMARK, LEADER, POLL, SEND
from rift_checker.writer import HistoryWriter

__all__ = ["generate_history"]


def generate_history(
    target: str | Path | IO[str],
    *,
    ops: int,
    seed: int = 0,
    workers: int = 5,
    partitions: int = 3,
    topic: str = "t",
    fail_rate: float = 0.02,
    info_rate: float = 0.02,
    max_poll: int = 8,
    observe_rate: float = 0.01,
    flush_every: int = 4096,
) -> int:
    """Write a valid history of about ``ops`` operations; return the number written.

    The final read counts as one of the ``ops``. ``rng`` choices depend only on the
    arguments, so one seed always gives one history.
    """
    if ops < 1 or workers < 1 or partitions < 1:
        raise ValueError("ops, workers and partitions must be >= 1")
    rng = random.Random(seed)
    log: list[list[Any]] = [[] for _ in range(partitions)]
    nodes = ["n1", "n2", "n3"]
    epochs = [0] * partitions
    process = list(range(workers))  # current process id of each worker
    next_process = workers
    pending: list[tuple[str, Any] | None] = [None] * workers
    # Workers consume like a group: each is assigned a few partitions and starts
    # where the group got to (minus a little, as after a rebalance).
    group = [0] * partitions
    positions: list[dict[int, int]] = [{i % partitions: 0} for i in range(workers)]
    now = 0
    invoked = 0
    value = 0
    with HistoryWriter(
        target, metadata={"generator": "rift_checker.synth", "seed": seed}, flush_every=flush_every
    ) as w:
        for p in range(partitions):
            w.observe(
                f=LEADER,
                value={"topic": topic, "partition": p, "epoch": 0, "node": "n1"},
                node="n1",
                time=now,
            )
        while invoked < ops - 1 or any(pending):
            now += rng.randint(1, 2_000_000)
            i = rng.randrange(workers)
            proc = process[i]
            job = pending[i]
            if job is None:
                if invoked >= ops - 1:
                    continue
                invoked += 1
                if rng.random() < 0.5:
                    value += 1
                    p = rng.randrange(partitions)
                    pending[i] = (SEND, (p, value))
                    w.invoke(
                        process=proc,
                        f=SEND,
                        time=now,
                        value={"topic": topic, "partition": p, "value": value},
                    )
                elif rng.random() < 0.03 or not positions[i]:
                    pending[i] = (ASSIGN, None)
                    w.invoke(
                        process=proc,
                        f=ASSIGN,
                        time=now,
                        value={"topic": topic, "partitions": list(range(partitions))},
                    )
                else:
                    pending[i] = (POLL, None)
                    w.invoke(process=proc, f=POLL, time=now, value=None)
                continue
            pending[i] = None
            f, arg = job
            roll = rng.random()
            outcome = (
                "fail" if roll < fail_rate else "info" if roll < fail_rate + info_rate else "ok"
            )
            if outcome == "info":
                process[i] = next_process
                next_process += 1
                positions[i] = {}
            if f == SEND:
                p, v = arg
                if outcome == "ok" or (outcome == "info" and rng.random() < 0.5):
                    log[p].append(v)
                if outcome == "ok":
                    w.ok(
                        process=proc,
                        time=now,
                        value={
                            "topic": topic,
                            "partition": p,
                            "offset": len(log[p]) - 1,
                            "value": v,
                        },
                    )
                else:
                    w.complete(
                        process=proc,
                        type=outcome,
                        time=now,
                        error="timeout",
                        value={"topic": topic, "partition": p, "value": v},
                    )
            elif f == ASSIGN:
                if outcome == "ok":
                    chosen = rng.sample(range(partitions), rng.randint(1, min(3, partitions)))
                    positions[i] = {p: max(0, group[p] - rng.randint(0, 2)) for p in chosen}
                w.complete(process=proc, type=outcome, time=now)
            elif outcome == "ok":
                records: dict[str, list[list[Any]]] = {}
                pos = positions[i]
                for p in pos:
                    start = pos[p]
                    end = min(len(log[p]), start + rng.randint(0, max_poll))
                    records[f"{topic}/{p}"] = [[o, log[p][o]] for o in range(start, end)]
                    pos[p] = end
                    group[p] = max(group[p], end)
                w.ok(process=proc, time=now, value={"records": records})
            else:
                w.complete(process=proc, type=outcome, time=now, error="timeout")
            if rng.random() < observe_rate:
                p = rng.randrange(partitions)
                if rng.random() < 0.3:
                    epochs[p] += 1
                    w.observe(
                        f=LEADER,
                        time=now,
                        value={
                            "topic": topic,
                            "partition": p,
                            "epoch": epochs[p],
                            "node": rng.choice(nodes),
                        },
                    )
                else:
                    w.observe(
                        f=HIGH_WATERMARK,
                        time=now,
                        value={"topic": topic, "partition": p, "offset": len(log[p])},
                    )
        now += 1
        final = next_process
        w.invoke(process=final, f=FINAL_READ, time=now, value=None)
        records = {
            f"{topic}/{p}": [[o, v] for o, v in enumerate(log[p])] for p in range(partitions)
        }
        w.ok(process=final, time=now + 1, value={"records": records})
    return invoked + 1
