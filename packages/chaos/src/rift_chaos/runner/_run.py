"""The runner: one Jepsen-style test, from nothing to a stored verdict.

Theory of operation
-------------------
1. **Set up**: make the nodes (the workload's backend), install, configure and
   start the system on each, wait until every node serves, and let the system do
   its cluster-wide set-up (create the topic) if it has that ability.
2. **Run**: a dispatcher walks the seeded schedule in real time, handing each
   client operation to its worker's queue and each fault to the nemesis thread.
   A worker is bound to one node and performs one operation at a time; every
   invocation and completion goes to the history as it happens. After an ``info``
   the worker's connection is dropped and it continues as a new process (its old
   operation may still take effect).
3. **Heal**: when the time limit is reached, the workers finish what they hold
   (bounded by the client timeout), and the nemesis heals everything.
4. **Recover and read**: wait for every node to serve again, then read every
   partition from the beginning (``final-read``, retried until one succeeds) so
   the checker can tell a lost write from one it simply never saw.
5. **Tear down and judge**: collect each node's logs, stop the system, remove
   the nodes; check the history, write ``results.json``, ``nemesis.jsonl`` and
   ``report.html``, print the verdict.

Teardown runs whatever happens (an exception, Ctrl-C): no node, rule or process
outlives the run, and a crashed runner leaves ``chaos heal --run-id`` a run id.
"""

from __future__ import annotations

import json
import queue
import random
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from rift_chaos.client import Client, complete_exceptionally
from rift_chaos.errors import ChaosError
from rift_chaos.generator import generate
from rift_chaos.nemesis import (
    ClockNemesis,
    ComposedNemesis,
    KillNemesis,
    Nemesis,
    NemesisContext,
    NoopNemesis,
    PartitionNemesis,
    PauseNemesis,
    Timeline,
)
from rift_chaos.op import NEMESIS, Op, OpType, next_process
from rift_chaos.remote import Cluster, Node, make_cluster, new_run_id
from rift_chaos.report import fault_windows, op_samples, render_report
from rift_chaos.runner._live import Counters, LiveView
from rift_chaos.runner._store import RunStore
from rift_chaos.system import ClusterSetup, Observable, System, SystemFactory, load_system
from rift_chaos.workload import Workload
from rift_checker import CheckConfig, HistoryWriter, Result, check_history, render

EXIT_VALID, EXIT_INVALID, EXIT_UNKNOWN = 0, 1, 2
READY_TIMEOUT_S = 90.0
FINAL_READ_ATTEMPTS = 10
_STOP = object()


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOutcome:
    directory: Path
    result: Result
    run_id: str

    @property
    def exit_code(self) -> int:
        if self.result.valid is True:
            return EXIT_VALID
        return EXIT_INVALID if self.result.valid is False else EXIT_UNKNOWN


def build_nemesis(kinds: Sequence[str]) -> Nemesis:
    parts: list[Nemesis] = []
    if any(k.startswith("partition") for k in kinds):
        parts.append(PartitionNemesis())
    if "kill" in kinds:
        parts.append(KillNemesis())
    if "pause" in kinds:
        parts.append(PauseNemesis())
    if "clock" in kinds:
        parts.append(ClockNemesis())
    return ComposedNemesis(parts) if parts else NoopNemesis()


class _History:
    """The history writer, shared by the worker and nemesis threads."""

    def __init__(self, path: Path, *, metadata: dict[str, Any], clock: Any) -> None:
        self._writer = HistoryWriter(path, metadata=metadata)
        self._lock = threading.Lock()
        self._clock = clock

    def invoke(self, *, process: int | str, op: Op, node: str | None) -> None:
        with self._lock:
            self._writer.invoke(
                process=process, f=op.f, value=op.value, node=node, time=self._clock()
            )

    def complete(self, *, process: int | str, done: Op, node: str | None) -> int:
        with self._lock:
            now = self._clock()
            self._writer.complete(
                process=process,
                type=str(done.type),
                value=done.value,
                error=done.error,
                node=node,
                time=now,
            )
            return int(now)

    def observe(self, *, f: str, value: Any, node: str | None) -> None:
        with self._lock:
            self._writer.observe(f=f, value=value, node=node, time=self._clock())

    def close(self) -> None:
        with self._lock:
            self._writer.close()


class Runner:
    def __init__(
        self,
        workload: Workload,
        *,
        results: Path = Path("results"),
        registry: Mapping[str, SystemFactory] | None = None,
        console: Console | None = None,
    ) -> None:
        seed = (
            workload.seed if workload.seed is not None else random.SystemRandom().randrange(2**31)
        )
        self.workload = workload.with_overrides(seed=seed)
        self.seed = seed
        self._results = results
        self._registry = registry
        self.console = console or Console()
        self.run_id = new_run_id()
        self._t0 = time.monotonic_ns()
        self.counters = Counters()
        self.timeline = Timeline()

    def now(self) -> int:
        return time.monotonic_ns() - self._t0

    # -- the whole run -----------------------------------------------------------

    def run(self) -> RunOutcome:
        w = self.workload
        store = RunStore.create(self._results, w)
        self.console.print(
            f"[bold]chaos run[/bold] {w.name}: {w.nodes} nodes on {w.backend}, seed {self.seed}, "
            f"{w.time_limit:g}s; run id [bold]{self.run_id}[/bold] "
            f"(if interrupted: chaos heal --run-id {self.run_id})",
            highlight=False,
        )
        system = load_system(w.system, registry=self._registry)
        cluster = make_cluster(w.backend, nodes=w.nodes, run_id=self.run_id)
        history = _History(
            store.history,
            metadata={"workload": w.name, "seed": self.seed, "run_id": self.run_id},
            clock=self.now,
        )
        live = LiveView(
            console=self.console,
            title=f"chaos run {w.name} (seed {self.seed})",
            time_limit=w.time_limit,
            counters=self.counters,
            faults=self.timeline.active,
            clock=self.now,
        )
        interrupted = False
        live.start()
        try:
            with cluster:
                try:
                    self._set_up(cluster, system, live)
                    interrupted = self._drive(cluster, system, history, live)
                    live.phase = "final read"
                    self._final_read(cluster, system, history)
                    self._observations(cluster, system, history)
                finally:
                    live.phase = "tearing down"
                    self._tear_down(cluster, system, store)
        finally:
            history.close()
            live.close()
        store.timeline.write_text(self.timeline.to_jsonl(), encoding="utf-8")
        result = self._judge(store)
        if interrupted:
            raise ChaosError(f"interrupted; what ran is stored in {store.directory}")
        return RunOutcome(directory=store.directory, result=result, run_id=self.run_id)

    # -- phases -------------------------------------------------------------------

    def _set_up(self, cluster: Cluster, system: System, live: LiveView) -> None:
        live.phase = "setting up nodes"
        for node in cluster.nodes:
            remote = cluster.remote(node.name)
            system.install(remote)
            system.configure(remote, nodes=cluster.nodes)
        live.phase = "starting the system"
        for node in cluster.nodes:
            system.start(cluster.remote(node.name))
        for node in cluster.nodes:
            system.wait_ready(cluster.remote(node.name), timeout=READY_TIMEOUT_S)
        if isinstance(system, ClusterSetup):
            system.setup_cluster(cluster.nodes, timeout=READY_TIMEOUT_S)

    def _drive(self, cluster: Cluster, system: System, history: _History, live: LiveView) -> bool:
        w = self.workload
        nodes = cluster.nodes
        nemesis = build_nemesis(w.nemesis.kinds)
        nemesis.setup(
            NemesisContext(cluster=cluster, timeline=self.timeline, now=self.now, system=system)
        )
        queues: list[queue.Queue[Any]] = [queue.Queue() for _ in range(w.client.concurrency)]
        nemesis_queue: queue.Queue[Any] = queue.Queue()
        threads = [
            threading.Thread(
                target=self._worker,
                args=(i, queues[i], nodes[i % len(nodes)], system, history),
                name=f"worker-{i}",
                daemon=True,
            )
            for i in range(w.client.concurrency)
        ]
        threads.append(
            threading.Thread(
                target=self._nemesis_loop,
                args=(nemesis, nemesis_queue, history),
                name="nemesis",
                daemon=True,
            )
        )
        for t in threads:
            t.start()
        schedule = generate(
            nodes=[n.name for n in nodes],
            client=w.client,
            nemesis=w.nemesis,
            time_limit=w.time_limit,
            seed=self.seed,
            topic=w.system.topic,
            partitions=w.system.partitions,
        )
        self._t0 = time.monotonic_ns()  # the schedule's clock starts now
        live.phase = "running"
        interrupted = False
        try:
            for op in schedule:
                delay = (op.time - self.now()) / 1e9
                if delay > 0:
                    time.sleep(delay)
                if op.process == NEMESIS:
                    nemesis_queue.put(op)
                else:
                    queues[int(op.process)].put(op)
            rest = w.time_limit - self.now() / 1e9
            if rest > 0:
                time.sleep(rest)
        except KeyboardInterrupt:
            interrupted = True
            for q in queues:  # drop what has not started
                with q.mutex:
                    q.queue.clear()
        live.phase = "healing"
        for q in queues:
            q.put(_STOP)
        nemesis_queue.put(_STOP)
        grace = w.client.timeout + 10.0
        for t in threads:
            t.join(timeout=grace)
        nemesis.teardown()
        for node in nodes:
            system.resume(cluster.remote(node.name))
            system.start(cluster.remote(node.name))
        return interrupted

    def _worker(
        self, index: int, ops: queue.Queue[Any], node: Node, system: System, history: _History
    ) -> None:
        process = index
        client: Client | None = None
        timeout = self.workload.client.timeout
        while True:
            op = ops.get()
            if op is _STOP:
                break
            history.invoke(process=process, op=op, node=node.name)
            if client is None:
                try:
                    client = system.client()
                    client.open(node, timeout=timeout)
                except Exception as exc:  # nothing was sent: the op certainly did not happen
                    client = None
                    done = op.fail(error=f"cannot connect to {node.name}: {exc}")
                    self.counters.add(
                        "fail", history.complete(process=process, done=done, node=node.name)
                    )
                    continue
            try:
                done = client.invoke(op)
            except Exception as exc:
                done = complete_exceptionally(op, exc)
            at = history.complete(process=process, done=done, node=node.name)
            self.counters.add(str(done.type), at)
            if done.type is OpType.INFO:
                _close(client)
                client = None
                process = next_process(process, concurrency=self.workload.client.concurrency)
        if client is not None:
            _close(client)

    def _nemesis_loop(self, nemesis: Nemesis, ops: queue.Queue[Any], history: _History) -> None:
        while True:
            op = ops.get()
            if op is _STOP:
                return
            history.invoke(process=NEMESIS, op=op, node=None)
            try:
                done = nemesis.invoke(op)
            except Exception as exc:
                done = complete_exceptionally(op, exc)
            history.complete(process=NEMESIS, done=done, node=None)

    def _final_read(self, cluster: Cluster, system: System, history: _History) -> None:
        for node in cluster.nodes:
            try:
                system.wait_ready(cluster.remote(node.name), timeout=READY_TIMEOUT_S)
            except ChaosError as exc:
                self.console.print(f"[yellow]node {node.name} did not recover: {exc}[/yellow]")
        process = 1_000_000
        for attempt in range(FINAL_READ_ATTEMPTS):
            node = cluster.nodes[attempt % len(cluster.nodes)]
            op = Op(type=OpType.INVOKE, f="final-read", process=process, value=None)
            history.invoke(process=process, op=op, node=node.name)
            client = system.client()
            try:
                client.open(node, timeout=self.workload.client.timeout)
                done = client.invoke(op)
            except Exception as exc:
                done = complete_exceptionally(op, exc)
            finally:
                _close(client)
            history.complete(process=process, done=done, node=node.name)
            if done.type is OpType.OK:
                return
            process += 1
            time.sleep(min(2.0 * (attempt + 1), 10.0))
        self.console.print("[yellow]no final read succeeded: the verdict may be unknown[/yellow]")

    def _observations(self, cluster: Cluster, system: System, history: _History) -> None:
        """Append what the nodes recorded about themselves (leaders, high watermarks),
        merged across nodes in the order they happened (the checker reads line order
        as time order)."""
        if not isinstance(system, Observable):
            return
        facts: list[tuple[int, int, str, Mapping[str, Any]]] = []
        for node in cluster.nodes:
            try:
                found = system.observations(cluster.remote(node.name))
            except Exception as exc:
                self.console.print(f"[yellow]no observations from {node.name}: {exc}[/yellow]")
                continue
            for i, fact in enumerate(found):
                at = fact.get("time_ms")
                facts.append((int(at) if at is not None else 0, i, node.name, fact))
        for _, _, name, fact in sorted(facts, key=lambda item: (item[0], item[1])):
            history.observe(f=str(fact["f"]), value=fact["value"], node=name)

    def _tear_down(self, cluster: Cluster, system: System, store: RunStore) -> None:
        for node in cluster.nodes:
            remote = cluster.remote(node.name)
            try:
                system.collect(remote, store.node_dir(node.name))
            except Exception as exc:
                self.console.print(f"[yellow]could not collect {node.name}: {exc}[/yellow]")
            try:
                system.stop(remote)
            except Exception as exc:
                self.console.print(f"[yellow]could not stop {node.name}: {exc}[/yellow]")

    def _judge(self, store: RunStore) -> Result:
        checks = self.workload.checks
        names = None if "all" in checks.run else frozenset(checks.run)
        config = (
            CheckConfig(tolerate=frozenset(checks.tolerate))
            if names is None
            else CheckConfig(checks=names, tolerate=frozenset(checks.tolerate))
        )
        result = check_history(store.history, config=config)
        result.write_json(store.results)
        history = _read_jsonl(store.history)
        samples = op_samples(history)
        end = max((s.end_ns for s in samples), default=0)
        faults = fault_windows(
            [
                {
                    "start": win.start,
                    "end": win.end,
                    "kind": win.kind,
                    "description": _describe(win),
                }
                for win in self.timeline.windows()
            ],
            end_ns=end,
        )
        page = render_report(
            title=f"{self.workload.name} — seed {self.seed}",
            samples=samples,
            faults=faults,
            results=result.to_dict(),
            meta={
                "run id": self.run_id,
                "backend": self.workload.backend,
                "nodes": self.workload.nodes,
                "time limit": f"{self.workload.time_limit:g}s",
                "nemesis": ", ".join(self.workload.nemesis.kinds) or "none",
            },
        )
        store.report.write_text(page, encoding="utf-8")
        self.console.print(render(result))
        self.console.print(f"stored in {store.directory}", highlight=False)
        return result


def _describe(window: Any) -> str:
    where = f" {window.node}" if window.node else ""
    what = f" {window.value}" if window.value not in (None, {}) else ""
    return f"{window.kind}{where}{what}"


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _close(client: Client) -> None:
    try:
        client.close()
    except Exception:  # closing a broken connection must not end the worker
        return
