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

Until some endpoint has answered once, a fleet whose every endpoint refuses connections
(or rejects the model, path or key) for `connect_retry_s` raises `BackendUnavailable`
naming each URL and why, as a single dead server does: the stage stops with exit 2
instead of writing a failed record for every job.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from ..aio import gather_or_cancel
from ..errors import BackendUnavailable
from .http import (
    OpenAIHTTPBackend,
    _EndpointFatal,
    _Fatal,
    _Retryable,
    _Unreachable,
    all_samples,
    backoff_delay,
    gave_up,
)
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
        self.connect_retry_s = self.endpoints[0].backend.connect_retry_s
        self._next = 0
        self._served = False  # until one endpoint answers, a fleet of dead endpoints stops the stage
        self._dead: dict[str, str] = {}  # url -> why, for endpoints that never answered
        self._dead_since: float | None = None

    def endpoint_stats(self) -> dict[str, dict[str, int]]:
        return {e.url: e.stats() for e in self.endpoints}

    async def chat(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        if len(requests) == 1:
            return [await self._sampled(requests[0])]
        # a dead fleet (or we were cancelled): the siblings stop too
        return await gather_or_cancel(self._sampled(r) for r in requests)

    async def _sampled(self, req: ChatRequest) -> Completion:
        return await all_samples(self._one, req, await self._one(req))

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
        # before anything answered, probe at least every second (as a single backend retries)
        e.down_until = time.monotonic() + (e.down_for if self._served else min(e.down_for, 1.0))
        e.taken_out += 1
        e.streak = 0
        log.warning("endpoint %s taken out for %.1fs: %s", e.url, e.down_for, why)

    def _put_back(self, e: _Endpoint) -> None:
        if not e.up:
            log.warning("endpoint %s back in service", e.url)
        e.down_until = e.down_for = 0.0
        e.streak = 0

    # -- sending ----------------------------------------------------------------------------
    async def _send(self, e: _Endpoint, req: ChatRequest, resent: list[int]) -> Completion:
        """One attempt on `e` in its current dialect. A dialect (or token-id prompt) the
        endpoint refuses or ignores moves it on, and the request is resent there at once:
        `resent[0]` counts those sends; a dropped reply's tokens are added to the answer."""
        e.outstanding += 1
        prompt_tokens = completion_tokens = 0
        try:
            while True:
                body, dialect, tokens = e.backend.body_for(req)
                ticket = await e.backend.limiter.acquire()
                t_sent = time.perf_counter()
                try:
                    comp = await e.backend._attempt(e.backend._get_session(), body, e.backend.url_for(req))
                except (_Retryable, _Fatal) as err:
                    e.backend.limiter.release()
                    if e.backend.refused(req, dialect, tokens, err):
                        resent[0] += 1
                        continue
                    err.ticket = ticket
                    raise
                e.backend.limiter.release()
                e.backend.limiter.on_success(ticket, time.perf_counter() - t_sent, e.backend.timeout_s)
                if e.backend.ignored(req, dialect, comp):
                    resent[0] += 1
                    prompt_tokens += comp.usage.prompt_tokens
                    completion_tokens += comp.usage.completion_tokens
                    continue
                comp.usage.prompt_tokens += prompt_tokens
                comp.usage.completion_tokens += completion_tokens
                return comp
        finally:
            e.outstanding -= 1

    def _failed(self, e: _Endpoint, err: _Retryable, probe: bool) -> bool:
        """Count a failed attempt; whether the endpoint is now out (resend elsewhere, free)."""
        e.failures += 1
        ticket = err.ticket
        if err.pushback:
            e.backend.limiter.on_pushback(ticket)
            return False
        if err.overload:
            e.backend.limiter.on_overload(ticket)
        e.streak += 1
        if probe or err.down or isinstance(err, _Unreachable) or e.streak >= self.fail_streak:
            if e.up or probe:
                self._take_out(e, str(err))
            return True
        return False

    def _never_answered(self, e: _Endpoint, err: Exception) -> bool:
        """Note an endpoint that refused or rejected us before the fleet ever answered; raise
        `BackendUnavailable` naming every URL once all of them did (for `connect_retry_s`, or
        at once when each rejected the model, path or key). Whether to keep trying without
        spending the retry budget."""
        if self._served or not isinstance(err, _Unreachable | _EndpointFatal):
            return False
        self._dead[e.url] = e.backend._redact(str(err))
        if self._dead_since is None:
            self._dead_since = time.monotonic()
        if all(x.url in self._dead for x in self.endpoints):
            fatal = isinstance(err, _EndpointFatal)
            if fatal or time.monotonic() - self._dead_since >= self.connect_retry_s:
                why = "; ".join(self._dead[x.url] for x in self.endpoints)
                raise BackendUnavailable(f"no endpoint of the fleet answers ({len(self.endpoints)} tried): {why}")
        if isinstance(err, _EndpointFatal) and (e.up or e.probing):
            self._take_out(e, str(err))
        return True

    async def _one(self, req: ChatRequest) -> Completion:
        start = time.perf_counter()
        retries = failovers = 0
        resent = [0]
        last_error = ""
        while True:
            e, probe = await self._pick()
            try:
                comp = await self._send(e, req, resent)
            except (_Retryable, _Fatal) as err:
                last_error = f"{e.url}: {e.backend._redact(str(err))}"
                if self._never_answered(e, err):
                    if isinstance(err, _Retryable):
                        self._failed(e, err, probe)  # counts it and takes the endpoint out
                    else:
                        e.failures += 1
                    failovers += 1  # a dead fleet is retried for connect_retry_s, outside the budget
                    retries += 1
                    continue
                if isinstance(err, _Fatal):
                    e.failures += 1
                    return Completion(
                        model=self.model_id,
                        error=last_error,
                        retries=retries + resent[0],
                        latency_s=time.perf_counter() - start,
                    )
                out = self._failed(e, err, probe)
                if out and failovers < 2 * len(self.endpoints) and any(x.up for x in self.endpoints):
                    failovers += 1  # resent on another endpoint at once, outside the retry budget
                    retries += 1
                    continue
                if retries - failovers >= self.max_retries:
                    break
                retries += 1
                await asyncio.sleep(
                    backoff_delay(retries - failovers, self.backoff_base_s, self.backoff_max_s, err.retry_after)
                )
                continue
            finally:
                if probe:
                    e.probing = False
            self._served = True
            e.calls += 1
            self._put_back(e)
            comp.retries = retries + resent[0]
            comp.latency_s = time.perf_counter() - start
            return comp
        return gave_up(self.model_id, retries + resent[0], last_error, start)

    async def aclose(self) -> None:
        for e in self.endpoints:
            await e.backend.aclose()
