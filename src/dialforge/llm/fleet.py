"""A fleet of OpenAI-compatible servers behind one role: `base_url: [URL, URL, ...]`.

How users scale a large model: one vLLM/SGLang server per GPU node, every URL in the role's
config. Each request goes to the endpoint with the fewest requests outstanding (in flight
or waiting for that endpoint's limiter), each endpoint with its own AIMD limiter, so a slow
or pushing-back server gets less. An endpoint that refuses or drops connections, or answers
a streak of `fail_streak` 5xx/timeouts, is taken out for a backoff that doubles while it
stays down; after the backoff one probe request goes to it, and its success puts it back.
A request that fails on an endpoint taken out is resent at once on another without using
its retry budget (a server dying mid-run costs no errors); per-endpoint calls and
failures go into the stage summary.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from typing import Any

import orjson

from .http import OpenAIHTTPBackend, _Fatal, _Retryable, _Unreachable
from .types import ChatRequest, Completion

log = logging.getLogger("dialforge.llm")


class _Endpoint:
    def __init__(self, backend: OpenAIHTTPBackend) -> None:
        self.backend = backend
        self.url = backend.base_url
        self.outstanding = 0
        self.calls = 0
        self.failures = 0
        self.taken_out = 0
        self.streak = 0
        self.down_until = 0.0  # 0: in service
        self.down_for = 0.0
        self.probing = False

    @property
    def up(self) -> bool:
        return self.down_until == 0.0

    def stats(self) -> dict[str, int]:
        return {"calls": self.calls, "failures": self.failures, "taken_out": self.taken_out}


class EndpointFleet:
    """A `ChatModel` over several servers of one model; see the module docstring."""

    def __init__(
        self,
        model: str,
        base_urls: Sequence[str],
        *,
        max_retries: int = 5,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        fail_streak: int = 5,
        down_base_s: float = 1.0,
        down_max_s: float = 60.0,
        **http: Any,
    ) -> None:
        if not base_urls:
            raise ValueError("an endpoint fleet needs at least one URL")
        self.model_id = model
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.fail_streak = fail_streak
        self.down_base_s = down_base_s
        self.down_max_s = down_max_s
        self.endpoints = [_Endpoint(OpenAIHTTPBackend(model, u, max_retries=0, **http)) for u in base_urls]
        self._next = 0

    def endpoint_stats(self) -> dict[str, dict[str, int]]:
        return {e.url: e.stats() for e in self.endpoints}

    async def chat(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        if len(requests) == 1:
            return [await self._one(requests[0])]
        return list(await asyncio.gather(*(self._one(r) for r in requests)))

    # -- choosing ---------------------------------------------------------------------------
    def _choose(self) -> tuple[_Endpoint | None, bool]:
        now = time.monotonic()
        for e in self.endpoints:  # a rested endpoint gets one probe request at a time
            if not e.up and not e.probing and now >= e.down_until:
                e.probing = True
                return e, True
        n = len(self.endpoints)
        self._next = (self._next + 1) % n  # ties go round the fleet
        up = [(e.outstanding, (i - self._next) % n, e) for i, e in enumerate(self.endpoints) if e.up]
        return (min(up, key=lambda t: t[:2])[2], False) if up else (None, False)

    async def _pick(self) -> tuple[_Endpoint, bool]:
        while True:
            e, probe = self._choose()
            if e is not None:
                return e, probe
            waits = [x.down_until for x in self.endpoints if not x.probing]
            await asyncio.sleep(max(0.01, min(waits) - time.monotonic()) if waits else 0.05)

    def _take_out(self, e: _Endpoint, why: str) -> None:
        e.down_for = min(self.down_max_s, e.down_for * 2 if e.down_for else self.down_base_s)
        e.down_until = time.monotonic() + e.down_for
        e.taken_out += 1
        e.streak = 0
        log.warning("endpoint %s taken out for %.1fs: %s", e.url, e.down_for, why)

    def _put_back(self, e: _Endpoint) -> None:
        if not e.up:
            log.warning("endpoint %s back in service", e.url)
        e.down_until = e.down_for = 0.0
        e.streak = 0

    # -- sending ----------------------------------------------------------------------------
    async def _send(self, e: _Endpoint, body: bytes) -> Completion:
        e.outstanding += 1
        try:
            await e.backend.limiter.acquire()
            try:
                return await e.backend._attempt(e.backend._get_session(), body)
            finally:
                e.backend.limiter.release()
        finally:
            e.outstanding -= 1

    def _failed(self, e: _Endpoint, err: _Retryable, probe: bool) -> bool:
        """Count a failed attempt; whether the endpoint is now out (resend elsewhere, free)."""
        e.failures += 1
        if err.pushback:
            e.backend.limiter.on_pushback()
            return False
        e.streak += 1
        if probe or err.down or isinstance(err, _Unreachable) or e.streak >= self.fail_streak:
            if e.up or probe:
                self._take_out(e, str(err))
            return True
        return False

    async def _one(self, req: ChatRequest) -> Completion:
        body = orjson.dumps(self.endpoints[0].backend._payload(req))
        start = time.perf_counter()
        retries = failovers = 0
        last_error = ""
        while True:
            e, probe = await self._pick()
            try:
                comp = await self._send(e, body)
            except _Retryable as err:
                last_error = f"{e.url}: {e.backend._redact(str(err))}"
                out = self._failed(e, err, probe)
                if out and failovers < 2 * len(self.endpoints) and any(x.up for x in self.endpoints):
                    failovers += 1  # resent on another endpoint at once, outside the retry budget
                    retries += 1
                    continue
                if retries - failovers >= self.max_retries:
                    break
                retries += 1
                delay = err.retry_after or min(self.backoff_max_s, self.backoff_base_s * 2 ** (retries - failovers))
                await asyncio.sleep(delay * (0.5 + random.random()) if not err.retry_after else delay)
                continue
            except _Fatal as err:
                e.failures += 1
                return Completion(
                    model=self.model_id,
                    error=f"{e.url}: {e.backend._redact(str(err))}",
                    retries=retries,
                    latency_s=time.perf_counter() - start,
                )
            finally:
                if probe:
                    e.probing = False
            e.calls += 1
            self._put_back(e)
            e.backend.limiter.on_success()
            comp.retries = retries
            comp.latency_s = time.perf_counter() - start
            return comp
        return Completion(
            model=self.model_id,
            retries=retries,
            error=f"gave up after {retries} retries: {last_error}",
            latency_s=time.perf_counter() - start,
        )

    async def aclose(self) -> None:
        for e in self.endpoints:
            await e.backend.aclose()
