"""Endpoint fleets (`base_url: [URL, URL]`) against real loopback servers: least-outstanding
routing, a killed server's requests resent on the others with 0 errors, a 5xx streak takes
an endpoint out and a probe puts it back, per-endpoint counts in the stage summary."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import pytest

from dialforge.answer import AnswerConfig, answer
from dialforge.errors import BackendUnavailable
from dialforge.llm import backend_config
from dialforge.llm.fleet import EndpointFleet
from dialforge.llm.http import OpenAIHTTPBackend
from dialforge.llm.pool import make_backend
from dialforge.llm.types import ChatRequest
from dialforge.testing import EXAMPLE_TEXT, FakeOpenAIServer


def _ask(fleet: EndpointFleet, n: int) -> list:
    async def go():
        try:
            return await fleet.chat([ChatRequest([{"role": "user", "content": f"q{i}"}]) for i in range(n)])
        finally:
            await fleet.aclose()

    return asyncio.run(go())


def test_a_list_of_urls_builds_a_fleet_and_one_url_a_plain_backend():
    two = make_backend(backend_config(model="m", base_url=["http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1"]))
    one = make_backend(backend_config(model="m", base_url=["http://127.0.0.1:1/v1"]))
    assert isinstance(two, EndpointFleet) and [e.url for e in two.endpoints] == [
        "http://127.0.0.1:1/v1",
        "http://127.0.0.1:2/v1",
    ]
    assert isinstance(one, OpenAIHTTPBackend)


def test_each_request_goes_to_the_endpoint_with_the_fewest_outstanding():
    with FakeOpenAIServer(delay_s=0.2) as a, FakeOpenAIServer(delay_s=0.2) as b:
        fleet = EndpointFleet("m", [a.base_url, b.base_url], max_concurrency=32)
        comps = _ask(fleet, 16)
    assert all(c.ok for c in comps)
    assert (a.served, b.served) == (8, 8) and (a.max_in_flight, b.max_in_flight) == (8, 8)
    assert fleet.endpoint_stats() == {
        a.base_url: {"calls": 8, "failures": 0, "taken_out": 0},
        b.base_url: {"calls": 8, "failures": 0, "taken_out": 0},
    }


def test_a_slow_endpoint_gets_fewer_requests():
    with FakeOpenAIServer(delay_s=0.5) as slow, FakeOpenAIServer(delay_s=0.01) as fast:
        fleet = EndpointFleet("m", [slow.base_url, fast.base_url])
        sem = asyncio.Semaphore(4)

        async def one(i):
            async with sem:
                return (await fleet.chat([ChatRequest([{"role": "user", "content": f"q{i}"}])]))[0]

        async def go():
            try:
                return await asyncio.gather(*(one(i) for i in range(40)))
            finally:
                await fleet.aclose()

        comps = asyncio.run(go())
    assert all(c.ok for c in comps) and slow.served + fast.served == 40
    assert slow.served <= 4  # round-robin would have sent it 20


def test_each_endpoint_has_its_own_limiter():
    with FakeOpenAIServer(delay_s=0.05) as a, FakeOpenAIServer(delay_s=0.05) as b:
        fleet = EndpointFleet("m", [a.base_url, b.base_url], max_concurrency=3)
        comps = _ask(fleet, 30)
    assert all(c.ok for c in comps) and a.served + b.served == 30
    assert a.max_in_flight == 3 and b.max_in_flight == 3  # 30 at once, never above 3 per server


def test_a_5xx_streak_takes_an_endpoint_out_and_a_probe_puts_it_back():
    with FakeOpenAIServer(delay_s=0.02) as a, FakeOpenAIServer(delay_s=0.02) as b:
        b.inject("500", times=5)
        fleet = EndpointFleet(
            "m", [a.base_url, b.base_url], max_concurrency=1, max_retries=5, backoff_base_s=0.01, down_base_s=0.2
        )

        async def go():
            first = await fleet.chat([ChatRequest([{"role": "user", "content": f"q{i}"}]) for i in range(10)])
            taken = fleet.endpoint_stats()[b.base_url]["taken_out"]
            await asyncio.sleep(0.3)  # past b's backoff: the next request may probe it
            second = await fleet.chat([ChatRequest([{"role": "user", "content": f"r{i}"}]) for i in range(10)])
            await fleet.aclose()
            return first + second, taken

        comps, taken = asyncio.run(go())
    assert all(c.ok for c in comps)
    s = fleet.endpoint_stats()
    assert taken == 1 and s[b.base_url]["taken_out"] == 1 and s[b.base_url]["failures"] == 5
    assert s[b.base_url]["calls"] >= 1  # the probe succeeded and b serves again
    assert s[a.base_url]["calls"] + s[b.base_url]["calls"] == 20


def test_a_killed_endpoint_costs_no_errors_and_the_summary_counts_per_endpoint(data_dir, tmp_path):
    a = FakeOpenAIServer(delay_s=0.02).start()
    b = FakeOpenAIServer(delay_s=0.02)
    served = {"n": 0}

    def reply(body):
        served["n"] += 1
        if served["n"] == 20:  # b dies half-way (stopped from another thread, as a crash would be)
            threading.Thread(target=b.stop).start()
        return "Answer."

    b.reply = reply
    b.start()
    try:
        cfg = AnswerConfig(
            prompts=[str(data_dir / "oasst/prompt_lottery_en_250_text.jsonl")],
            assistant=backend_config(model="m", base_url=[a.base_url, b.base_url], max_retries=0),
            limit=100,
            concurrency=8,
        )
        s = answer(cfg, tmp_path / "run", progress=False)
    finally:
        a.stop()
        b.stop()
    assert s["failed"] == 0 and s["answered_now"] == 100  # no retry budget, and still no errors
    rows = [json.loads(x) for x in (tmp_path / "run/conversations.jsonl").read_text().splitlines()]
    assert len(rows) == 100 and len({r["id"] for r in rows}) == 100
    ep = json.loads((tmp_path / "run/manifest.json").read_text())["stages"]["answer"]["endpoints"]
    assert ep[b.base_url]["taken_out"] >= 1 and ep[b.base_url]["failures"] >= 1
    assert 20 <= ep[b.base_url]["calls"] < 30 and ep[a.base_url]["calls"] + ep[b.base_url]["calls"] == 100


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def test_a_fleet_whose_every_endpoint_refuses_stops_the_stage_naming_each_url():
    urls = [f"http://127.0.0.1:{_closed_port()}/v1" for _ in range(2)]
    fleet = EndpointFleet("m", urls, connect_retry_s=1.0, max_retries=0)
    t0 = time.perf_counter()
    with pytest.raises(BackendUnavailable) as e:
        _ask(fleet, 8)
    took = time.perf_counter() - t0
    msg = str(e.value)
    assert msg.startswith("no endpoint of the fleet answers (2 tried): ") and "\n" not in msg
    for u in urls:
        assert f"{u}/chat/completions: cannot connect (" in msg
    assert 1.0 <= took < 5.0  # retried for the configured seconds, then stopped


def test_a_fleet_rejecting_the_key_everywhere_stops_at_once():
    with FakeOpenAIServer() as a, FakeOpenAIServer() as b:
        a.inject("401", times=50)
        b.inject("401", times=50)
        with pytest.raises(BackendUnavailable, match=r"\(2 tried\): .*HTTP 401.*; .*HTTP 401"):
            _ask(EndpointFleet("m", [a.base_url, b.base_url], connect_retry_s=30.0), 4)


def test_one_dead_endpoint_at_the_start_is_not_a_dead_fleet():
    dead = f"http://127.0.0.1:{_closed_port()}/v1"
    with FakeOpenAIServer() as live:
        fleet = EndpointFleet("m", [dead, live.base_url], connect_retry_s=0.2, max_retries=0)
        comps = _ask(fleet, 10)
    assert all(c.ok for c in comps) and live.served == 10


def test_a_dead_fleet_stops_a_stage_with_nothing_recorded(data_dir, tmp_path):
    urls = [f"http://127.0.0.1:{_closed_port()}/v1" for _ in range(2)]
    cfg = AnswerConfig(
        prompts=[str(data_dir / "oasst/prompt_lottery_en_250_text.jsonl")],
        assistant=backend_config(model="m", base_url=urls, max_retries=0, connect_retry_s=0.5),
        limit=20,
        concurrency=4,
    )
    with pytest.raises(BackendUnavailable, match="no endpoint of the fleet answers"):
        answer(cfg, tmp_path / "run", progress=False)
    out = tmp_path / "run/conversations.jsonl"
    assert not out.exists() or out.read_text() == ""  # no job was recorded as failed


def test_a_raw_prompt_goes_to_the_completions_endpoint_of_a_fleet():
    """A trained simulator's token-id prompt is sent to /v1/completions, as by a single backend."""
    with FakeOpenAIServer() as a, FakeOpenAIServer() as b:
        fleet = EndpointFleet("m", [a.base_url, b.base_url])

        async def go():
            try:
                return await fleet.chat(
                    [ChatRequest([], prompt=[5, 6, 7]), ChatRequest([{"role": "user", "content": "q"}])]
                )
            finally:
                await fleet.aclose()

        raw, chat = asyncio.run(go())
    assert raw.ok and chat.ok
    assert sorted(a.paths + b.paths) == ["/v1/chat/completions", "/v1/completions"]
    sent = next(r for r in a.requests + b.requests if "prompt" in r)
    assert sent["prompt"] == [5, 6, 7]


def test_each_endpoint_negotiates_its_own_structured_output_dialect():
    """A fleet of a json_schema server and a llama-cpp-python-like one (json_object only,
    HTTP 500 to json_schema): each endpoint keeps its own dialect; no request fails."""
    from pydantic import BaseModel

    from dialforge import LLM
    from dialforge.llm import http

    class Pick(BaseModel):
        strategy: str
        instruction: str

    http._LEARNED.clear()
    with FakeOpenAIServer() as full, FakeOpenAIServer(response_formats=("json_object", "text")) as llama:
        fleet = EndpointFleet("m", [full.base_url, llama.base_url], backoff_base_s=0.01, max_retries=0)
        llm = LLM(fleet)

        async def go():
            try:
                return await asyncio.gather(
                    *(llm.structured([{"role": "user", "content": f"pick {i}"}], Pick) for i in range(12))
                )
            finally:
                await llm.aclose()

        results = asyncio.run(go())
    http._LEARNED.clear()
    assert all(r.ok and r.value == Pick(strategy=EXAMPLE_TEXT, instruction=EXAMPLE_TEXT) for r in results)
    by_url = {e.url: e.backend.dialect for e in fleet.endpoints}
    assert by_url == {full.base_url: "json_schema", llama.base_url: "json_object"}
    assert {b["response_format"]["type"] for b in full.requests} == {"json_schema"}
    assert [b["response_format"]["type"] for b in llama.requests].count("json_schema") == llama.refused >= 1
    totals = llm.usage.totals()["m"]
    assert totals.failures == 0 and totals.calls + totals.retries == len(full.requests) + len(llama.requests)
