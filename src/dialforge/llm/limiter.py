"""Adaptive concurrency: additive increase, multiplicative decrease (AIMD), in windows.

Two kinds of signal cut the limit:
- **pushback** (429/503): a server that is over capacity answers most requests beyond it that
  way, while a rate limiter or a busy shared endpoint answers a few percent of them at random.
  So pushbacks are counted per window of `max(window_min, limit)` answers: the limit is cut
  when their share in the window passes `tolerance` (20%: a burst), and a few percent are
  only retried (each after its own `Retry-After`). Measured: 5% 429s at 1,000 in flight keep the
  fault-free throughput (docs/benchmarks.md); halving on every 429 took it down ~60x.
- **overload** (a timeout, a dropped connection, or an answer that took more than half the
  timeout): the server queues more than it serves in time (llama-cpp-python answers one
  request at a time): halve at once.

A cut is taken once per epoch: signals from requests sent before the last cut (their ticket,
from `acquire`, is older) are ignored, so one burst is one cut. The limit starts at `initial`
(8) and doubles per calm window (pushbacks under half the tolerance) until the first cut
(slow start: a server that answers one request at a time never sees 64 requests queue past
the timeout); after a cut, a calm window grows it by half (quick recovery), a window with
more pushbacks by one slot, never above `max_limit`. From 8 to 1,000 in flight takes 7
windows (7 round trips).
"""

from __future__ import annotations

import asyncio
from collections import deque


class AIMDLimiter:
    def __init__(
        self,
        max_limit: int,
        min_limit: int = 1,
        *,
        initial: int = 8,
        tolerance: float = 0.2,
        window_min: int = 8,
        burst_min: int = 3,
    ) -> None:
        self.max_limit = max_limit
        self.min_limit = min_limit
        self.limit = float(max(min_limit, min(initial, max_limit)))
        self.slow_start = True  # until the first cut
        self.tolerance = tolerance
        self.window_min = window_min
        self.burst_min = burst_min
        self.in_flight = 0
        self.decreases = 0
        self.epoch = 0
        self._ok = 0  # answers in the current window
        self._pushed = 0  # pushbacks in the current window
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> int:
        """Wait for a slot; returns the ticket to hand back with the request's signal."""
        if self.in_flight < int(self.limit) and not self._waiters:
            self.in_flight += 1
            return self.epoch
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # granted just before the cancel: give the slot back
            raise
        return self.epoch

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < int(self.limit):
            fut = self._waiters.popleft()
            if not fut.done():
                self.in_flight += 1
                fut.set_result(None)

    @property
    def window(self) -> int:
        return max(self.window_min, int(self.limit))

    def _cut(self, factor: float) -> None:
        self.limit = max(float(self.min_limit), self.limit * factor)
        self.slow_start = False
        self.decreases += 1
        self.epoch += 1
        self._ok = self._pushed = 0

    def _stale(self, ticket: int | None) -> bool:
        return ticket is not None and ticket < self.epoch

    def on_success(
        self, ticket: int | None = None, latency_s: float | None = None, timeout_s: float | None = None
    ) -> None:
        """An answer; one that took more than half the timeout is an overload signal too."""
        if latency_s is not None and timeout_s and latency_s > timeout_s / 2:
            self.on_overload(ticket)
            return
        if self._stale(ticket):
            return
        self._ok += 1
        self._end_window()

    def on_pushback(self, ticket: int | None = None) -> None:
        """A 429/503: cut when the window's share of them passes the tolerance."""
        if self._stale(ticket):
            return
        self._pushed += 1
        if self._pushed >= max(self.burst_min, self.tolerance * self.window):
            self._cut(0.5)
            return
        self._end_window()

    def on_overload(self, ticket: int | None = None) -> None:
        """A timeout or dropped connection: halve at once (once per epoch)."""
        if not self._stale(ticket):
            self._cut(0.5)

    def _end_window(self) -> None:
        n = self._ok + self._pushed
        if n < self.window:
            return
        if self.limit < self.max_limit:
            if self._pushed > self.tolerance / 2 * n:
                grow = 1.0
            else:
                grow = self.limit if self.slow_start else max(1.0, self.limit / 2)
            self.limit = min(float(self.max_limit), self.limit + grow)
            self._wake()
        self._ok = self._pushed = 0
