"""Broker heartbeat sessions: who has lapsed, as a function of ``now_ms``.

A broker's session starts when it registers or when a controller becomes active
(every known broker gets a full session then, so a failover never fences the
whole cluster), and is renewed by each heartbeat. ``expired(now_ms)`` lists the
brokers whose last renewal is at least ``session_timeout_ms`` old; the
controller fences them. Time only enters as an argument.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["BrokerSessions"]


class BrokerSessions:
    def __init__(self, *, session_timeout_ms: int) -> None:
        if session_timeout_ms <= 0:
            raise ValueError("session_timeout_ms must be positive")
        self.session_timeout_ms = session_timeout_ms
        self._last: dict[int, int] = {}

    def renew(self, broker: int, now_ms: int) -> None:
        self._last[broker] = max(now_ms, self._last.get(broker, now_ms))

    def reset(self, brokers: Iterable[int], now_ms: int) -> None:
        """Start a fresh session for each of ``brokers``; forget everyone else."""
        self._last = dict.fromkeys(brokers, now_ms)

    def forget(self, broker: int) -> None:
        self._last.pop(broker, None)

    def expired(self, now_ms: int) -> list[int]:
        return sorted(b for b, t in self._last.items() if now_ms - t >= self.session_timeout_ms)

    def next_deadline(self) -> int | None:
        """When the next session lapses, if any is open."""
        if not self._last:
            return None
        return min(self._last.values()) + self.session_timeout_ms
