"""Time for asyncio drivers of sans-IO cores: what time it is, and a timer at a given time.

A core takes ``now_ms`` and says when it next needs to be called
(``next_deadline()``); its driver needs exactly two things from a clock, which
:class:`Clock` names. :class:`WallClock` is the real one: wall-clock milliseconds
(what Kafka's coordinator uses; they also end up in stored records) and timers on
the running event loop. :class:`ManualClock` is the fake that ships for tests: time
moves only in :meth:`ManualClock.advance`, which fires the timers that fall due, in
order, each at its own time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["Cancellable", "Clock", "WallClock", "ManualClock"]


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """``now_ms()``: the current time. ``call_at(when_ms, callback)``: run ``callback``
    (on the driver's thread) once the time is ``when_ms`` or later, unless the returned
    handle is cancelled first; a time in the past means as soon as possible."""

    def now_ms(self) -> int: ...

    def call_at(self, when_ms: int, callback: Callable[[], None]) -> Cancellable: ...


class WallClock:
    """Wall-clock milliseconds; timers on the running event loop."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def call_at(self, when_ms: int, callback: Callable[[], None]) -> asyncio.TimerHandle:
        delay_s = max(when_ms - self.now_ms(), 0) / 1000
        return asyncio.get_running_loop().call_later(delay_s, callback)


class _Timer:
    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """A clock that moves only when told to (for deterministic tests)."""

    def __init__(self, now_ms: int = 0) -> None:
        self._now = now_ms
        self._timers: list[tuple[int, int, _Timer]] = []
        self._order = itertools.count()

    def now_ms(self) -> int:
        return self._now

    def call_at(self, when_ms: int, callback: Callable[[], None]) -> _Timer:
        timer = _Timer(callback)
        heapq.heappush(self._timers, (when_ms, next(self._order), timer))
        return timer

    @property
    def pending(self) -> int:
        """Timers set and neither fired nor cancelled."""
        return sum(1 for _, _, timer in self._timers if not timer.cancelled)

    def next_timer(self) -> int | None:
        """When the earliest pending timer is due (None: there is none)."""
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    def advance(self, ms: int) -> None:
        """Move time ``ms`` forward, firing every timer due on the way at its due time
        (timers set by those callbacks fire too, if due before the end)."""
        if ms < 0:
            raise ValueError(f"time does not go backwards (advance by {ms})")
        end = self._now + ms
        while (due := self.next_timer()) is not None and due <= end:
            _, _, timer = heapq.heappop(self._timers)
            self._now = max(self._now, due)
            timer.callback()
        self._now = end
