"""Adaptive concurrency: additive increase, multiplicative decrease (AIMD)."""

from __future__ import annotations

import asyncio
import time
from collections import deque


class AIMDLimiter:
    """A semaphore whose size shrinks by half when the server pushes back (429/503) and
    grows by about one slot per window of successes, never above `max_limit`.

    Decreases are rate-limited to one per `cooldown_s`, so a burst of 429s from requests
    already in flight counts as one signal, not thirty.
    """

    def __init__(self, max_limit: int, min_limit: int = 1, cooldown_s: float = 0.5) -> None:
        self.max_limit = max_limit
        self.min_limit = min_limit
        self.limit = float(max_limit)
        self.cooldown_s = cooldown_s
        self.in_flight = 0
        self.decreases = 0
        self._last_decrease = -1e9
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        if self.in_flight < int(self.limit) and not self._waiters:
            self.in_flight += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # granted just before the cancel: give the slot back
            raise

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < int(self.limit):
            fut = self._waiters.popleft()
            if not fut.done():
                self.in_flight += 1
                fut.set_result(None)

    def on_success(self) -> None:
        if self.limit < self.max_limit:
            self.limit = min(float(self.max_limit), self.limit + 1.0 / self.limit)
            self._wake()

    def on_pushback(self) -> None:
        now = time.monotonic()
        if now - self._last_decrease >= self.cooldown_s:
            self._last_decrease = now
            self.limit = max(float(self.min_limit), self.limit / 2)
            self.decreases += 1
