"""The schedule: a pure, seeded stream of client and nemesis invocations over time.

:func:`generate` yields invocations (:class:`~rift_chaos.op.Op` with
``type="invoke"``) in time order; ``op.time`` is when, in ns after the start of
the run, the operation is due. It is a pure function of its arguments: the same
seed gives the same schedule, byte for byte, on every machine and Python version
(``random.Random`` seeded from a string is stable across both).

Client operations arrive at ``rate`` per second in total, each gap drawn uniformly
from ``[0, 2 / rate)`` (Jepsen's *stagger*), and go to workers round-robin
(``process`` = operation number mod ``concurrency``). ``f`` is drawn by the mix.
Values follow the checker's history schema (rift_checker.history):

- ``send``: ``{"topic": t, "partition": p, "value": n}`` with ``p`` drawn uniformly
  and ``n`` = 1, 2, 3, ... in schedule order, unique within a run, so the checker
  can tell every write apart;
- ``poll``, ``commit``: ``None``;
- ``assign``: ``{"partitions": ["t/0", "t/2"]}``, a non-empty random subset;
- ``subscribe``: ``{"topics": [t]}``. The runner waits for a busy worker,
so a worker's operations never overlap; after an ``info`` it continues under
:func:`~rift_chaos.op.next_process`.

Nemesis operations come in start/stop pairs (see :mod:`rift_chaos.generator.spec`
for the plans); partition shapes are resolved here into explicit grudges, except
``partition-leader`` and the ``leader`` target, which only the running system can
resolve. Every fault started before the time limit is stopped at the latest at the
time limit. Client and nemesis streams draw from separate generators, so changing
the nemesis plan does not change the client load.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator, Sequence
from typing import Any

from rift_chaos.generator.spec import ClientSpec, NemesisSpec
from rift_chaos.nemesis import grudge
from rift_chaos.op import NEMESIS, Op, OpType

__all__ = ["NS", "client_ops", "generate", "nemesis_ops", "schedule"]

NS = 1_000_000_000


def client_ops(
    spec: ClientSpec, *, time_limit: float, seed: int, topic: str = "rift", partitions: int = 1
) -> Iterator[Op]:
    """Client invocations due before ``time_limit`` seconds."""
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, got {partitions}")
    rng = random.Random(f"rift-client-{seed}")
    fs = sorted(spec.mix)
    weights = [spec.mix[f] for f in fs]
    limit = int(time_limit * NS)
    # Expected count is rate * time_limit; the cap only guards the loop.
    cap = math.ceil(spec.rate * time_limit * 4) + 16
    now, sends = 0, 0
    for i in range(cap):
        now += int(rng.uniform(0.0, 2.0 / spec.rate) * NS)
        if now >= limit:
            return
        (f,) = rng.choices(fs, weights=weights)
        value: Any = None
        if f == "send":
            sends += 1
            value = {"topic": topic, "partition": rng.randrange(partitions), "value": sends}
        elif f == "assign":
            count = rng.randint(1, partitions)
            chosen = sorted(rng.sample(range(partitions), count))
            value = {"partitions": [f"{topic}/{p}" for p in chosen]}
        elif f == "subscribe":
            value = {"topics": [topic]}
        yield Op(type=OpType.INVOKE, f=f, process=i % spec.concurrency, value=value, time=now)


def nemesis_ops(
    spec: NemesisSpec, *, nodes: Sequence[str], time_limit: float, seed: int
) -> Iterator[Op]:
    """Nemesis invocations: start/stop pairs, every stop at or before ``time_limit``."""
    if not spec.active:
        return
    rng = random.Random(f"rift-nemesis-{seed}")
    limit = int(time_limit * NS)
    interval = spec.interval
    now = 0
    # Each pair takes at least interval (alternate) or interval/2 (random) seconds.
    for _ in range(math.ceil(time_limit / (interval / 2)) + 1):
        quiet = interval if spec.schedule == "alternate" else rng.uniform(0.5, 1.5) * interval
        start = now + int(quiet * NS)
        if start >= limit:
            return
        kind = rng.choice(spec.kinds)
        duration = interval if spec.schedule == "alternate" else rng.uniform(0.5, 1.5) * interval
        stop = min(start + int(duration * NS), limit)
        start_f, start_value, stop_f, stop_value = _fault(kind, spec, list(nodes), rng)
        yield Op(type=OpType.INVOKE, f=start_f, process=NEMESIS, value=start_value, time=start)
        yield Op(type=OpType.INVOKE, f=stop_f, process=NEMESIS, value=stop_value, time=stop)
        now = stop


def _fault(
    kind: str, spec: NemesisSpec, nodes: list[str], rng: random.Random
) -> tuple[str, Any, str, Any]:
    """(start f, start value, stop f, stop value) of one fault of ``kind``."""
    if kind.startswith("partition-"):
        shapes = {
            "partition-halves": lambda: grudge.halves(nodes),
            "partition-random-halves": lambda: grudge.random_halves(nodes, rng),
            "partition-random-node": lambda: grudge.isolate_random(nodes, rng),
            "partition-majorities-ring": lambda: grudge.majorities_ring(nodes, rng),
            "partition-bridge": lambda: grudge.bridge(nodes, rng),
            "partition-one-way": lambda: grudge.random_one_way(nodes, rng),
        }
        if kind == "partition-leader":
            value: dict[str, Any] = {"kind": kind, "target": "leader"}
        else:
            value = {"kind": kind, "grudge": grudge.to_value(shapes[kind]())}
        return "start-partition", value, "stop-partition", None
    targets = _targets(spec.targets, nodes, rng, allow_leader=kind != "clock")
    if kind == "clock":
        chosen = targets["nodes"]
        m = spec.max_clock_offset
        offsets = {n: round(rng.uniform(-m, m), 3) for n in chosen}
        return "clock-offset", {"offsets": offsets}, "clock-reset", {"nodes": chosen}
    start_f, stop_f = {"kill": ("kill", "restart"), "pause": ("pause", "resume")}[kind]
    stop_value = None if "target" in targets else dict(targets)
    return start_f, targets, stop_f, stop_value


def _targets(
    targets: str, nodes: list[str], rng: random.Random, *, allow_leader: bool
) -> dict[str, Any]:
    n = len(nodes)
    if targets == "leader" and allow_leader:
        return {"target": "leader"}
    if targets in ("one", "leader"):
        return {"nodes": [rng.choice(nodes)]}
    count = {"minority": max(1, (n - 1) // 2), "majority": n // 2 + 1, "all": n}[targets]
    return {"nodes": sorted(rng.sample(nodes, count))}


def generate(
    *,
    nodes: Sequence[str],
    client: ClientSpec,
    nemesis: NemesisSpec,
    time_limit: float,
    seed: int,
    topic: str = "rift",
    partitions: int = 1,
) -> Iterator[Op]:
    """Client and nemesis invocations merged in time order (nemesis first on ties)."""
    if not (math.isfinite(time_limit) and time_limit > 0):
        raise ValueError(f"time_limit must be a positive number of seconds, got {time_limit!r}")
    faults = nemesis_ops(nemesis, nodes=nodes, time_limit=time_limit, seed=seed)
    load = client_ops(client, time_limit=time_limit, seed=seed, topic=topic, partitions=partitions)
    streams = (
        ((op.time, 0, i, op) for i, op in enumerate(faults)),
        ((op.time, 1, i, op) for i, op in enumerate(load)),
    )
    for *_, op in heapq.merge(*streams):
        yield op


def schedule(
    *,
    nodes: Sequence[str],
    client: ClientSpec,
    nemesis: NemesisSpec,
    time_limit: float,
    seed: int,
    topic: str = "rift",
    partitions: int = 1,
) -> tuple[Op, ...]:
    """The whole of :func:`generate` as a tuple."""
    return tuple(
        generate(
            nodes=nodes,
            client=client,
            nemesis=nemesis,
            time_limit=time_limit,
            seed=seed,
            topic=topic,
            partitions=partitions,
        )
    )
