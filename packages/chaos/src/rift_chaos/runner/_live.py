"""What the terminal shows while a run goes on.

A rich live panel when standard output is a terminal: phase, elapsed and remaining
time, operations per second over the last seconds, ok/fail/info counts and the
faults in force (with when they started). Elsewhere (CI, a pipe) one plain line
every few seconds, so logs stay readable.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from rich.console import Console, RenderableType
from rich.live import Live
from rich.table import Table

from rift_chaos.nemesis import FaultWindow


@dataclass(slots=True)
class Counters:
    """Completions so far; updated by workers under ``lock``."""

    ok: int = 0
    fail: int = 0
    info: int = 0
    recent: deque[int] = field(default_factory=lambda: deque(maxlen=100_000))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, at_ns: int) -> None:
        with self.lock:
            if kind == "ok":
                self.ok += 1
            elif kind == "fail":
                self.fail += 1
            else:
                self.info += 1
            self.recent.append(at_ns)

    def rate(self, now_ns: int, *, window_s: float = 5.0) -> float:
        cutoff = now_ns - int(window_s * 1e9)
        with self.lock:
            while self.recent and self.recent[0] < cutoff:
                self.recent.popleft()
            return len(self.recent) / window_s


class LiveView:
    """Shows progress until closed; safe to update from any thread."""

    def __init__(
        self,
        *,
        console: Console,
        title: str,
        time_limit: float,
        counters: Counters,
        faults: Callable[[], list[FaultWindow]],
        clock: Callable[[], int],
    ) -> None:
        self._console = console
        self._title = title
        self._limit = time_limit
        self._counters = counters
        self._faults = faults
        self._clock = clock
        self.phase = "setting up"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._live: Live | None = None

    def start(self) -> None:
        if self._console.is_terminal:
            self._live = Live(self.render(), console=self._console, refresh_per_second=4)
            self._live.start()
            target = self._refresh_live
        else:
            target = self._print_lines
        self._thread = threading.Thread(target=target, name="live-view", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._live is not None:
            self._live.update(self.render())
            self._live.stop()

    def _refresh_live(self) -> None:
        while not self._stop.wait(0.25):
            if self._live is not None:
                self._live.update(self.render())

    def _print_lines(self) -> None:
        while not self._stop.wait(5.0):
            self._console.print(self.line(), highlight=False, markup=False)

    def _numbers(self) -> tuple[float, float, float]:
        now = self._clock()
        elapsed = now / 1e9
        return elapsed, max(self._limit - elapsed, 0.0), self._counters.rate(now)

    def line(self) -> str:
        elapsed, remaining, rate = self._numbers()
        c = self._counters
        faults = ", ".join(_fault(w, self._clock()) for w in self._faults()) or "none"
        return (
            f"[{self.phase}] {elapsed:6.1f}s elapsed, {remaining:5.1f}s left, {rate:7.1f} ops/s, "
            f"ok {c.ok} fail {c.fail} info {c.info}, faults: {faults}"
        )

    def render(self) -> RenderableType:
        elapsed, remaining, rate = self._numbers()
        c = self._counters
        table = Table(title=self._title, title_justify="left", show_header=False, box=None)
        table.add_column(style="bold")
        table.add_column()
        table.add_row("phase", self.phase)
        table.add_row("time", f"{elapsed:.1f}s elapsed, {remaining:.1f}s left")
        table.add_row("throughput", f"{rate:.1f} ops/s")
        table.add_row(
            "completions",
            f"[green]ok {c.ok}[/green]  [red]fail {c.fail}[/red]  [yellow]info {c.info}[/yellow]",
        )
        faults = [_fault(w, self._clock()) for w in self._faults()]
        table.add_row("faults", "\n".join(faults) if faults else "none")
        return table


def _fault(window: FaultWindow, now_ns: int) -> str:
    where = f" {window.node}" if window.node else ""
    what = f" {window.value}" if window.value not in (None, {}) else ""
    return f"{window.kind}{where}{what} since {(now_ns - window.start) / 1e9:.1f}s ago"
