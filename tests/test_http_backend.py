"""The OpenAI-compatible backend against a real loopback server with injected faults."""

from __future__ import annotations

import asyncio
import time

import pytest
from pydantic import BaseModel

from dialforge import LLM, ChatRequest
from dialforge.errors import BackendUnavailable
from dialforge.llm.http import OpenAIHTTPBackend
from dialforge.testing import FakeOpenAIServer


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


@pytest.mark.slow
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


@pytest.mark.slow
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


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def test_connection_refused_stops_the_stage_in_seconds_naming_the_url():
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    b = OpenAIHTTPBackend("m", url, connect_retry_s=1.0, backoff_base_s=0.05)
    t0 = time.perf_counter()
    with pytest.raises(BackendUnavailable) as e:
        _ask(b, n=8)
    took = time.perf_counter() - t0
    msg = str(e.value)
    assert msg.startswith(f"{url}/chat/completions: cannot connect (") and "refused" in msg.lower()
    assert "\n" not in msg
    assert 1.0 <= took < 5.0  # retried for the configured seconds, not minutes


def test_dns_failure_names_the_host():
    b = OpenAIHTTPBackend("m", "http://no-such-host.invalid/v1", connect_retry_s=0)
    with pytest.raises(BackendUnavailable, match=r"no-such-host\.invalid.*cannot resolve host 'no-such-host\.invalid'"):
        _ask(b)


def test_tls_to_a_plain_http_server_is_one_line(fake_server):
    url = fake_server.base_url.replace("http://", "https://")
    with pytest.raises(
        BackendUnavailable, match=r"^https://127\.0\.0\.1:\d+/v1/chat/completions: TLS handshake failed"
    ):
        _ask(OpenAIHTTPBackend("m", url, connect_retry_s=0))


def test_401_names_the_env_var_never_the_key(fake_server, monkeypatch):
    monkeypatch.setenv("DF_TEST_KEY", "sk-secret-0123456789abcdef")
    fake_server.inject("401", times=4)
    with pytest.raises(BackendUnavailable) as e:
        _ask(_backend(fake_server, api_key_env="DF_TEST_KEY"), n=4)
    msg = str(e.value)
    assert "HTTP 401" in msg and "$DF_TEST_KEY" in msg and fake_server.base_url in msg
    assert "sk-secret" not in msg and "0123456789" not in msg
    assert 1 <= len(fake_server.requests) <= 4  # not retried; the siblings stop


def test_401_without_a_key_says_how_to_send_one(fake_server):
    fake_server.inject("401")
    with pytest.raises(BackendUnavailable, match="--api-key-env"):
        _ask(_backend(fake_server))


def test_404_names_the_model_and_url(fake_server):
    fake_server.inject("404")
    with pytest.raises(BackendUnavailable, match=r"HTTP 404: model 'fake-model' not found.*does not exist"):
        _ask(_backend(fake_server))


def test_after_a_first_success_endpoint_errors_are_per_request(fake_server):
    """Once the server has answered, one 404 or outage is that request's error, not the stage's end."""
    b = _backend(fake_server)

    async def go():
        try:
            first = await b.chat([ChatRequest([{"role": "user", "content": "a"}])])
            fake_server.inject("404")
            second = await b.chat([ChatRequest([{"role": "user", "content": "b"}])])
            return first + second
        finally:
            await b.aclose()

    first, second = asyncio.run(go())
    assert first.ok and not second.ok and "HTTP 404" in second.error


@pytest.mark.slow
@pytest.mark.parametrize("status", [400, 401, 500])
def test_a_key_echoed_anywhere_in_a_long_error_body_is_masked(fake_server, monkeypatch, status):
    key = "sk-MRKq7fZ9w2LxQ4pT8vB1nC6yH3jD5"
    monkeypatch.setenv("DF_ECHO_KEY", key)
    offsets = list(range(0, 260))  # across the 200-character snippet cut
    for k in offsets:
        fake_server.inject("echo_key", status=status, offset=k, length=400)
    b = _backend(fake_server, api_key_env="DF_ECHO_KEY", max_retries=0)
    errors = []
    for _ in offsets:
        try:
            (c,) = _ask(b, n=1)
            errors.append(c.error)
        except BackendUnavailable as e:  # 401 before any success stops the stage: same masking
            errors.append(str(e))
    assert len(errors) == len(offsets) and all(errors)
    pieces = {key[i : i + 6] for i in range(len(key) - 5)}
    leaks = [(k, e) for k, e in zip(offsets, errors, strict=True) if any(p in e for p in pieces)]
    assert not leaks, leaks[:2]
    assert fake_server.headers[0]["Authorization"] == f"Bearer {key}"  # the key was sent and echoed


def test_a_key_echoed_in_a_reply_never_reaches_the_record(monkeypatch):
    key = "sk-echoed-in-content-98765"
    monkeypatch.setenv("DF_ECHO_KEY2", key)
    with FakeOpenAIServer(reply=lambda body: f"your key is {key}, bye") as srv:
        (c,) = _ask(OpenAIHTTPBackend("m", srv.base_url, api_key_env="DF_ECHO_KEY2"))
    assert c.ok and c.text == "your key is ***, bye"


def test_log_filter_masks_known_keys(caplog, monkeypatch):
    import logging

    from dialforge.llm.secrets import MaskSecretsFilter, register_secret

    register_secret("sk-logged-secret-4242")
    rec = logging.LogRecord("x", logging.WARNING, __file__, 1, "got %s", ("sk-logged-secret-4242 back",), None)
    assert MaskSecretsFilter().filter(rec) and rec.getMessage() == "got *** back"
