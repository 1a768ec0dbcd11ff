"""Byte budgets for backpressure: bounded in-flight request bytes.

A connection reserves the size of each request before it reads the request's body
off the socket, and releases it once the response is written. While a reservation
waits, the connection simply does not read: TCP's window fills and the producer
slows down, instead of the broker buffering without bound. Each connection has its
own budget and shares one broker-wide budget, so one greedy client cannot take all
of it and many clients together cannot exceed it.
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["ByteBudget"]


class ByteBudget:
    """A FIFO-fair counting semaphore over bytes; a single request may take it all."""

    __slots__ = ("_available", "_capacity", "_waiters")

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self._capacity = capacity
        self._available = capacity
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def in_use(self) -> int:
        return self._capacity - self._available

    def clamp(self, size: int) -> int:
        """What a request of ``size`` bytes is charged (never more than the capacity)."""
        return min(max(size, 1), self._capacity)

    async def acquire(self, size: int) -> int:
        """Wait until ``size`` bytes (clamped) are free, take them, and return the charge."""
        charge = self.clamp(size)
        if not self._waiters and charge <= self._available:
            self._available -= charge
            return charge
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (charge, future)
        self._waiters.append(entry)
        try:
            await future
        except BaseException:
            if future.done() and not future.cancelled():
                self.release(charge)  # granted and cancelled at once: give it back
            else:
                self._waiters.remove(entry)
                self._wake()
            raise
        return charge

    def release(self, charge: int) -> None:
        self._available += charge
        if self._available > self._capacity:  # pragma: no cover - a bug in a caller
            raise RuntimeError("released more bytes than were acquired")
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            charge, future = self._waiters[0]
            if future.done():
                self._waiters.popleft()
                continue
            if charge > self._available:
                return
            self._waiters.popleft()
            self._available -= charge
            future.set_result(None)
