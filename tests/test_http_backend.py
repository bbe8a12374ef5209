"""The OpenAI-compatible backend against a real loopback server with injected faults."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from pydantic import BaseModel

from dialforge import LLM, ChatRequest
from dialforge.errors import BackendUnavailable
from dialforge.llm.http import OpenAIHTTPBackend
from dialforge.testing import EXAMPLE_TEXT, FakeOpenAIServer


class Pick(BaseModel):
    strategy: str
    instruction: str


@pytest.fixture(autouse=True)
def _forget_dialects():
    """What a backend learns about a URL outlives it (the next stage starts there); a port the
    OS hands out again must not inherit another test's server."""
    from dialforge.llm import http

    http._LEARNED.clear()
    yield
    http._LEARNED.clear()


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


def _structured(llm, n=1, model=Pick, text="pick"):
    async def go():
        try:
            return await asyncio.gather(
                *(llm.structured([{"role": "user", "content": f"{text} {i}"}], model) for i in range(n))
            )
        finally:
            await llm.aclose()

    return asyncio.run(go())


def test_structured_output_request_and_repair(fake_server):
    llm = LLM(_backend(fake_server))

    async def go():
        try:
            first = await llm.structured([{"role": "user", "content": "pick 0"}], Pick)
            fake_server.inject("bad_json", times=1)  # the server honoured the schema once: now a model failure
            return first, await llm.structured([{"role": "user", "content": "pick 1"}], Pick)
        finally:
            await llm.aclose()

    first, res = asyncio.run(go())
    assert first.ok and first.raw == [
        json.dumps({"strategy": EXAMPLE_TEXT, "instruction": EXAMPLE_TEXT}, separators=(",", ":"))
    ]
    assert res.ok and res.value == Pick(strategy=EXAMPLE_TEXT, instruction=EXAMPLE_TEXT)
    assert res.raw[0] == "this is not JSON" and len(res.raw) == 2
    rf = fake_server.requests[0]["response_format"]
    assert rf["type"] == "json_schema" and rf["json_schema"]["schema"]["required"] == ["strategy", "instruction"]
    # the repair request shows the model its bad reply and the error, still as json_schema
    assert fake_server.requests[2]["messages"][-2] == {"role": "assistant", "content": "this is not JSON"}
    assert fake_server.requests[2]["response_format"]["type"] == "json_schema"
    assert llm.backend.dialect == "json_schema" and llm.backend.switches == []


def test_structured_output_typed_failure_never_raises(fake_server):
    llm = LLM(_backend(fake_server, structured_output="prompt"))
    fake_server.inject("bad_json", times=2)
    (res,) = _structured(llm)
    assert not res.ok and res.error.startswith("invalid after one repair attempt")
    assert res.raw == ["this is not JSON", "this is not JSON"]
    assert llm.usage.totals()["fake-model"].calls == 2


def test_llama_cpp_python_dialect_is_negotiated_once(caplog):
    """json_schema refused with HTTP 500 naming it (llama-cpp-python): every request is
    resent at once as json_object with the schema; logged once; no record fails."""
    with FakeOpenAIServer(response_formats=("json_object", "text"), delay_s=0.05) as srv:
        llm = LLM(_backend(srv, max_retries=0))
        results = _structured(llm, n=6)
        more = _structured(LLM(llm.backend), n=2)
    assert all(r.ok and r.value == Pick(strategy=EXAMPLE_TEXT, instruction=EXAMPLE_TEXT) for r in results + more)
    sent_as = [b["response_format"]["type"] for b in srv.requests]
    refused = sent_as.count("json_schema")
    assert 1 <= refused <= 6 and srv.refused == refused  # the ones already in flight when it switched
    assert sent_as[refused:] == ["json_object"] * 8
    rf = srv.requests[-1]["response_format"]
    assert rf["schema"]["required"] == ["strategy", "instruction"]
    # the grammar's strings are bounded (room for a sentence each) and the reply may take them all
    assert rf["schema"]["properties"]["strategy"]["maxLength"] == (512 - 2 - 14 - 17 - 8) // 2 == 235
    assert srv.requests[-1]["max_tokens"] == 2 + 14 + 17 + 2 * (235 + 3) + 8 + 16 == 533
    # the schema is in the prompt too (json_object alone does not name the fields)
    assert '"required": ["strategy", "instruction"]' in srv.requests[-1]["messages"][-1]["content"]
    assert llm.backend.dialect == "json_object"
    assert len(llm.backend.switches) == 1 and llm.backend.switches[0].startswith("json_schema -> json_object")
    again = OpenAIHTTPBackend("other-model", srv.base_url + "/")  # the next stage's backend for the same URL
    assert again.dialect == "json_object" and again.token_prompts
    warnings = [r for r in caplog.records if "structured output as json_schema" in r.getMessage()]
    assert len(warnings) == 1 and "HTTP 500" in warnings[0].getMessage()
    totals = llm.usage.totals()["fake-model"]
    assert totals.calls == 6 and totals.retries == refused and totals.failures == 0  # usage = the server's count


def test_a_server_that_refuses_every_response_format_gets_the_schema_in_the_prompt():
    def reply(body):
        if "response_format" in body:
            raise AssertionError("refused before the reply")
        content = body["messages"][-1]["content"]
        if "matches this JSON schema" in content:
            return 'Sure! Here it is: ```json\n{"strategy": "ask why", "instruction": "Why?"}\n```'
        return "no schema seen"

    with FakeOpenAIServer(reply=reply, response_formats=(), refuse_status=400) as srv:
        llm = LLM(_backend(srv, max_retries=0))
        (res,) = _structured(llm)
    assert res.ok and res.value == Pick(strategy="ask why", instruction="Why?")
    assert [b.get("response_format", {}).get("type") for b in srv.requests] == ["json_schema", "json_object", None]
    assert llm.backend.dialect == "prompt" and srv.refused == 2
    assert llm.usage.totals()["fake-model"].retries == 2


def test_a_server_that_ignores_response_format_is_detected_by_its_reply():
    def reply(body):
        content = body["messages"][-1]["content"]
        if "matches this JSON schema" in content:
            return '{"strategy": "s", "instruction": "i"}'
        return "Of course! I would be happy to help you pick."

    with FakeOpenAIServer(reply=reply, ignore_response_format=True) as srv:
        llm = LLM(_backend(srv))
        (res,) = _structured(llm)
        (res2,) = _structured(LLM(llm.backend))
    assert res.ok and res2.ok and res.raw == ['{"strategy": "s", "instruction": "i"}']
    assert [b["response_format"]["type"] for b in srv.requests] == ["json_schema", "json_object", "json_object"]
    assert llm.backend.dialect == "json_object"
    # the dropped reply's tokens are counted on the answer: usage equals what the server served
    assert llm.usage.totals()["fake-model"].completion_tokens == 10 + 4


def test_a_400_that_does_not_name_the_field_is_the_records_own_failure():
    """Context overflow (HTTP 400) is not a refusal of the schema: no switch, one failed record."""
    with FakeOpenAIServer() as srv:
        srv.inject("echo_key", status=400, length=60)  # a 400 whose body names nothing structured
        llm = LLM(_backend(srv))
        (res,) = _structured(llm)
    assert not res.ok and "HTTP 400" in res.error
    assert llm.backend.dialect == "json_schema" and len(srv.requests) == 1


def test_a_token_id_prompt_falls_back_to_the_rendered_text():
    """llama-cpp-python's /v1/completions takes only a string: HTTP 500 to token ids."""
    with FakeOpenAIServer(token_prompts=False, reply=lambda body: f"got {body['prompt']!r}") as srv:
        b = _backend(srv, max_retries=0)

        async def go():
            try:
                out = []
                for i in range(2):
                    req = ChatRequest([{"role": "user", "content": "x"}], prompt=[1, 2, i], prompt_text=f"<|u|>{i}")
                    out += await b.chat([req])
                return out
            finally:
                await b.aclose()

        first, second = asyncio.run(go())
    assert first.ok and first.text == "got '<|u|>0'" and first.retries == 1
    assert second.ok and second.text == "got '<|u|>1'" and second.retries == 0
    assert [r["prompt"] for r in srv.requests] == [[1, 2, 0], "<|u|>0", "<|u|>1"]
    assert set(srv.paths) == {"/v1/completions"}


def test_a_context_overflow_on_a_token_id_prompt_is_the_records_own_failure():
    """HTTP 400 "Requested tokens exceed context window" (llama-cpp-python) is not a refusal of
    token ids: one failed record, the URL keeps sending ids."""
    from aiohttp import web

    with FakeOpenAIServer() as srv:
        b = _backend(srv, max_retries=0)
        srv._refusal = lambda body: web.json_response(  # type: ignore[method-assign]
            {"error": {"message": "Requested tokens (2100) exceed context window of 2048"}}, status=400
        )
        req = ChatRequest([{"role": "user", "content": "x"}], prompt=[1, 2], prompt_text="text")
        (c,) = asyncio.run(b.chat([req]))
    assert not c.ok and "HTTP 400" in c.error and "context window" in c.error
    assert len(srv.requests) == 1 and b.token_prompts


def test_a_server_that_ignores_n_is_asked_again_for_each_sample():
    from dialforge import SamplingParams

    with FakeOpenAIServer(ignore_n=True, reply=lambda body: f"sample seed {body.get('seed')}") as srv:
        b = _backend(srv)
        req = ChatRequest([{"role": "user", "content": "x"}], SamplingParams(n=3, seed=10), sample_index=5)
        (c,) = asyncio.run(b.chat([req]))
    assert c.ok and c.texts == ["sample seed 15", "sample seed 16", "sample seed 17"]
    assert c.finish_reasons == ["stop"] * 3 and c.retries == 2 and len(srv.requests) == 3  # usage = server count
    assert [r.get("n", 1) for r in srv.requests] == [3, 1, 1]
    assert c.usage.completion_tokens == 3 * 3


def test_a_token_id_prompt_is_kept_where_the_server_takes_it(fake_server):
    b = _backend(fake_server)
    req = ChatRequest([{"role": "user", "content": "x"}], prompt=[5, 6], prompt_text="never sent")
    (c,) = asyncio.run(b.chat([req]))
    assert c.ok and fake_server.requests[0]["prompt"] == [5, 6]


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


def test_a_one_at_a_time_server_is_served_without_errors_at_the_default_concurrency():
    """llama-cpp-python answers one request at a time: 64 in flight queue past the timeout.
    The limiter cuts on timeouts (and on answers slower than half the timeout) instead of
    failing records."""
    with FakeOpenAIServer(delay_s=0.05, serial=True) as srv:
        backend = _backend(srv, timeout_s=1.0, backoff_base_s=0.05)  # max_concurrency 64: the default
        results = _ask(backend, n=80)
    assert all(c.ok for c in results), [c.error for c in results if not c.ok][:2]
    # slow start (8) and the cut on answers slower than half the timeout keep the line short:
    # no timeouts at all here (64 at once gave 77 timeouts and 19 answers nobody read)
    assert backend.limiter.decreases >= 1 and backend.limiter.limit < 16
    assert sum(c.retries for c in results) <= 2 and srv.served <= 82


def test_a_few_percent_of_429s_are_retried_without_cutting_throughput():
    """5% random 429s (a shared endpoint's rate limiter): each retried after its own backoff,
    the limit stays up (it used to halve every 0.5 s down to ~12 in flight)."""
    with FakeOpenAIServer(delay_s=0.02, fault_rates={"429": 0.05}, seed=7) as srv:
        backend = _backend(srv, max_concurrency=100, max_retries=8)
        results = _ask(backend, n=800)
    assert all(c.ok for c in results)
    retries = sum(c.retries for c in results)
    assert 20 <= retries <= 80 and len(srv.requests) == 800 + retries  # ~5%, each one counted
    assert backend.limiter.limit == 100 and srv.max_in_flight > 50


def test_aimd_limiter_arithmetic():
    from dialforge.llm.limiter import AIMDLimiter

    lim = AIMDLimiter(100)
    assert lim.limit == 8  # slow start
    for n in (8, 16, 32, 64):  # doubles per clean window of `limit` answers
        for _ in range(n):
            lim.on_success(0)
    assert lim.limit == 100 and lim.decreases == 0
    t = asyncio.run(lim.acquire())
    lim.release()
    for i in range(100):  # 5% pushbacks spread over a window: retried, never a cut
        lim.on_pushback(t) if i % 20 == 0 else lim.on_success(t)
    assert lim.limit == 100 and lim.decreases == 0
    for _ in range(19):
        lim.on_pushback(t)
    assert lim.limit == 100  # 19 of a 100-answer window: under the 20% tolerance
    lim.on_pushback(t)
    assert lim.limit == 50 and lim.decreases == 1 and lim.epoch == 1  # a burst: one cut
    for _ in range(30):
        lim.on_pushback(t)  # from requests sent before the cut: the same burst
    assert lim.limit == 50 and lim.decreases == 1
    t1 = lim.epoch
    lim.on_overload(t1)  # a timeout: halve at once
    lim.on_overload(t1)  # another from the same epoch: the same signal
    assert lim.limit == 25 and lim.decreases == 2
    t2 = lim.epoch
    for _ in range(25):  # a clean window grows by half (quick recovery)
        lim.on_success(t2)
    assert lim.limit == 37.5
    for _ in range(33):  # a window with 4 pushbacks in 37 (over half the tolerance) grows by one slot
        lim.on_success(t2)
    for _ in range(4):
        lim.on_pushback(t2)
    assert lim.limit == 38.5 and lim.decreases == 2
    for _ in range(35):  # 3 in 38 (under half the tolerance): calm, grows by half
        lim.on_success(t2)
    for _ in range(3):
        lim.on_pushback(t2)
    assert lim.limit == 57.75
    lim.on_success(t2, latency_s=61.0, timeout_s=120.0)  # slower than half the timeout: overload
    assert lim.limit == 28.875 and lim.decreases == 3
    floor = AIMDLimiter(4)
    for _ in range(6):
        floor.on_overload()
    assert floor.limit == 1  # never below the floor


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


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("not a url", "'not a url' is not a URL (it contains spaces)"),
        ("ftp://host/v1", "'ftp://host/v1': scheme 'ftp'; an OpenAI-compatible server URL is http(s)://"),
        ("localhost:8000/v1", "'localhost:8000/v1': scheme 'localhost'"),
        ("http:///v1", "'http:///v1': no host"),
        ("http://h:99999/v1", "is not a URL (Port out of range 0-65535)"),
        ("[http://a:1/v1, http://b:2/v1]", "is one string that looks like a list: a fleet is a list"),
        ("http://a:1/v1,http://b:2/v1", "is one string that looks like a list"),
        ("", "an empty URL"),
        ([], "an empty list"),
        (["http://a:1/v1", "gopher://b/v1"], "'gopher://b/v1': scheme 'gopher'"),
    ],
)
def test_a_bad_base_url_is_a_config_error(url, says):
    from pydantic import ValidationError

    from dialforge.llm import backend_config

    with pytest.raises(ValidationError) as e:
        backend_config(kind="http", model="m", base_url=url)
    assert says in str(e.value)


def test_a_real_list_is_a_fleet_and_a_url_is_one_server():
    from dialforge.llm import backend_config, make_backend
    from dialforge.llm.fleet import EndpointFleet

    assert backend_config(model="m", base_url="https://h.example/v1").base_url == "https://h.example/v1"
    fleet = make_backend(backend_config(model="m", base_url=["http://a:1/v1", "http://b:2/v1"]))
    assert isinstance(fleet, EndpointFleet) and [e.url for e in fleet.endpoints] == ["http://a:1/v1", "http://b:2/v1"]
    with pytest.raises(Exception, match=r"^base_url 'ftp://x' : scheme|^base_url 'ftp://x': scheme"):
        OpenAIHTTPBackend("m", "ftp://x")  # the Python API checks too


@pytest.mark.parametrize("url", ["not a url", "ftp://x/v1", "[http://127.0.0.1:1/v1, http://127.0.0.1:2/v1]"])
def test_cli_bad_base_url_is_one_line_exit_2_before_any_request(tmp_path, dialforge_cli, url):
    import subprocess

    q = tmp_path / "q.txt"
    q.write_text("What is 2+2?\n")
    out = tmp_path / "out"
    cmd = [*dialforge_cli, "answer", "--prompts", str(q), "--out", str(out), "--model", "m", "--base-url", url]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: command line: field 'assistant.base_url': "), lines
    assert "Traceback" not in r.stderr and not (out / "conversations.jsonl").exists()


@pytest.mark.slow
def test_a_trained_simulator_over_a_string_only_server_sends_exactly_the_rendered_text(tiny_model_dir, tmp_path):
    """`user_format: trained` over HTTP: token ids first; llama-cpp-python answers HTTP 500 to
    them, so the rest go as the rendered training text, byte for byte."""
    import json

    from dialforge.llm import backend_config
    from dialforge.llm.types import TokenPrompt
    from dialforge.simulate import SimulateConfig, simulate_async
    from dialforge.train.prompting import SimulatorPrompt

    def reply(body):
        return "What about the second part?" if "prompt" in body else "Here is an answer."

    seeds = tmp_path / "q.txt"
    seeds.write_text("How do tides work?\nWhy is the sky blue?\n")
    with FakeOpenAIServer(reply=reply, token_prompts=False) as srv:
        cfg = SimulateConfig(
            mode="socratic",
            user_format="trained",
            user_tokenizer=str(tiny_model_dir),
            seeds={"questions": [str(seeds)]},
            user=backend_config(model="sim", base_url=srv.base_url, max_concurrency=1),
            assistant=backend_config(model="asst", base_url=srv.base_url),
            max_turns=2,
            concurrency=1,
        )
        asyncio.run(simulate_async(cfg, tmp_path / "run", progress=False))
    raw = [(path, b) for path, b in zip(srv.paths, srv.requests, strict=True) if path == "/v1/completions"]
    prompts = [b["prompt"] for _, b in raw]
    assert isinstance(prompts[0], list) and all(isinstance(p, str) for p in prompts[1:])
    assert len(prompts) == 3 and srv.refused == 1  # one refused token-id prompt, then two texts
    rows = [json.loads(line) for line in (tmp_path / "run/conversations.jsonl").read_text().splitlines()]
    assert sorted(r["messages"][2]["content"] for r in rows) == ["What about the second part?"] * 2
    # exactly the training text: what the renderer lays out before the simulator's turn
    sp = SimulatorPrompt(str(tiny_model_dir))
    dialogue = [
        {"role": "user", "content": "How do tides work?"},
        {"role": "assistant", "content": "Here is an answer."},
    ]
    ids = sp.ids(dialogue)
    assert isinstance(ids, TokenPrompt) and ids.text in prompts[1:]
    full = sp.tok.apply_chat_template(
        [*sp.messages(dialogue), {"role": sp.fmt.writes, "content": "XYZ"}],
        chat_template=sp.fmt.template,
        tokenize=False,
    )
    assert full.startswith(ids.text) and full[len(ids.text) :].startswith("XYZ")
