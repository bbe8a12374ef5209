"""The OpenAI-compatible backend against a real loopback server with injected faults."""

from __future__ import annotations

import asyncio
import time

from pydantic import BaseModel

from dialforge import LLM, ChatRequest
from dialforge.llm.http import OpenAIHTTPBackend


class Pick(BaseModel):
    strategy: str
    instruction: str


def _backend(srv, **kw):
    kw.setdefault("backoff_base_s", 0.01)
    return OpenAIHTTPBackend("fake-model", srv.base_url, **kw)


def _ask(backend, text="hello", n=1):
    async def go():
        try:
            return await backend.chat([ChatRequest([{"role": "user", "content": f"{text} {i}"}]) for i in range(n)])
        finally:
            await backend.aclose()

    return asyncio.run(go())


def test_reply_and_usage(fake_server):
    (c,) = _ask(_backend(fake_server), "hello world")
    assert c.ok and c.text == "echo: hello world 0"
    assert (c.usage.prompt_tokens, c.usage.completion_tokens) == (3, 4)
    assert c.retries == 0 and c.finish_reason == "stop"
    assert fake_server.requests[0]["model"] == "fake-model"


def test_500_retried_with_backoff(fake_server):
    fake_server.inject("500", times=2)
    (c,) = _ask(_backend(fake_server))
    assert c.ok and c.retries == 2
    assert len(fake_server.requests) == 3


def test_500_gives_up_after_max_retries(fake_server):
    fake_server.inject("500", times=5)
    (c,) = _ask(_backend(fake_server, max_retries=2))
    assert not c.ok and "gave up after 2 retries" in c.error and "HTTP 500" in c.error


def test_429_honours_retry_after(fake_server):
    fake_server.inject("429", times=1, retry_after=0.4)
    t = time.perf_counter()
    (c,) = _ask(_backend(fake_server, backoff_base_s=5.0))  # backoff would be far longer
    elapsed = time.perf_counter() - t
    assert c.ok and c.retries == 1
    assert 0.4 <= elapsed < 3.0


def test_hang_past_timeout_is_retried(fake_server):
    fake_server.inject("hang", times=1, seconds=3)
    (c,) = _ask(_backend(fake_server, timeout_s=0.3))
    assert c.ok and c.retries == 1
    fake_server.inject("hang", times=1, seconds=3)
    (c,) = _ask(_backend(fake_server, timeout_s=0.3, max_retries=0))
    assert not c.ok and "timeout" in c.error


def test_malformed_body_is_retried(fake_server):
    fake_server.inject("malformed", times=1)
    (c,) = _ask(_backend(fake_server))
    assert c.ok and c.retries == 1


def test_structured_output_request_and_repair(fake_server):
    fake_server.inject("bad_json", times=1)
    llm = LLM(_backend(fake_server))

    async def go():
        try:
            return await llm.structured([{"role": "user", "content": "pick"}], Pick)
        finally:
            await llm.aclose()

    res = asyncio.run(go())
    assert res.ok and res.value == Pick(strategy="ok", instruction="ok")
    assert res.raw[0] == "this is not JSON" and len(res.raw) == 2
    rf = fake_server.requests[0]["response_format"]
    assert rf["type"] == "json_schema" and rf["json_schema"]["schema"]["required"] == ["strategy", "instruction"]
    # the repair request shows the model its bad reply and the error
    assert fake_server.requests[1]["messages"][-2] == {"role": "assistant", "content": "this is not JSON"}


def test_structured_output_typed_failure_never_raises(fake_server):
    fake_server.inject("bad_json", times=2)
    llm = LLM(_backend(fake_server))
    res = asyncio.run(llm.structured([{"role": "user", "content": "pick"}], Pick))
    assert not res.ok and res.error.startswith("invalid after one repair attempt")
    assert res.raw == ["this is not JSON", "this is not JSON"]
    assert llm.usage.totals()["fake-model"].calls == 2


def test_adaptive_concurrency_backs_off_and_completes():
    from dialforge.testing import FakeOpenAIServer

    with FakeOpenAIServer(delay_s=0.02, capacity=4) as srv:
        backend = _backend(srv, max_concurrency=32, max_retries=50)
        results = _ask(backend, n=200)
    assert all(c.ok for c in results)
    assert backend.limiter.decreases >= 1
    assert backend.limiter.limit < 32
    assert sum(c.retries for c in results) > 0


def test_aimd_limiter_arithmetic():
    from dialforge.llm.limiter import AIMDLimiter

    lim = AIMDLimiter(16, cooldown_s=0.0)
    lim.on_pushback()
    assert lim.limit == 8
    lim.on_pushback()
    lim.on_pushback()
    lim.on_pushback()
    lim.on_pushback()
    assert lim.limit == 1  # never below the floor
    lim.on_success()
    assert lim.limit == 2.0  # additive: +1/limit per success
    lim.on_success()
    assert lim.limit == 2.5
    lim2 = AIMDLimiter(16, cooldown_s=60)
    lim2.on_pushback()
    lim2.on_pushback()  # within the cooldown: one signal
    assert lim2.limit == 8 and lim2.decreases == 1
