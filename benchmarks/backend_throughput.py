"""Throughput of the OpenAI-compatible backend against a loopback server answering after a
fixed latency, side by side with the ideal (concurrency / latency) and a thin client
(plain asyncio + the openai SDK, connection pool sized to the concurrency).

    python benchmarks/backend_throughput.py [--requests 10000] [--concurrency 16 256]
    python benchmarks/backend_throughput.py --rate-429 0.05 --concurrency 1000
    python benchmarks/backend_throughput.py --llamacpp --requests 16   # in-process vs llama.cpp

Server and client share the machine: at high concurrency CPU, not latency, bounds it.
With `--rate-429 P` the server answers a random share P of requests HTTP 429 (Retry-After 0)
and the dialforge client runs with and without those faults: the limiter must keep most of
the fault-free calls/s (issue 28: >= 50% at 5% and 1,000 in flight; it was 1.7%).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import subprocess
import sys
from collections.abc import Iterator

from _common import Meter, free_port, server_process, thin_openai_client

from dialforge.llm import ChatRequest
from dialforge.llm.http import OpenAIHTTPBackend

LATENCY = 0.05


async def run_dialforge(url: str, n: int, conc: int, stats: dict[str, float] | None = None) -> tuple[Meter, int]:
    backend = OpenAIHTTPBackend("bench", url, max_concurrency=conc, max_retries=3 if stats is None else 8)
    await backend.chat([ChatRequest([{"role": "user", "content": "warm up"}])])
    reqs = [ChatRequest([{"role": "user", "content": f"question {i}"}]) for i in range(n)]
    with Meter() as m:
        # the backend's own limiter caps what is in flight; hand it everything at once
        comps = await backend.chat(reqs)
    await backend.aclose()
    if stats is not None:
        stats.update(retries=sum(c.retries for c in comps), limit=backend.limiter.limit, cuts=backend.limiter.decreases)
    return m, sum(1 for c in comps if not c.ok)


@contextlib.contextmanager
def faulty_server(delay_s: float, rate_429: float) -> Iterator[str]:
    """The loopback server in its own process, answering a random share of requests 429."""
    port = free_port()
    cmd = [sys.executable, "-m", "dialforge.testing", "--port", str(port), "--delay", str(delay_s)]
    p = subprocess.Popen([*cmd, "--rate-429", str(rate_429)], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None
        p.stdout.readline()
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        p.terminate()
        p.wait(10)


def run_faults(rate: float, concurrency: list[int], n: int) -> None:
    """calls/s with and without `rate` 429s, the dialforge client, same machine, same run."""
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    print(f"server: dialforge.testing.FakeOpenAIServer, {LATENCY * 1000:.0f} ms, {rate:.0%} of requests 429")
    print("| in flight | requests | 429s | calls/s | kept | retries | final limit | cuts | errors |")
    print("|---|---|---|---|---|---|---|---|---|")
    for conc in concurrency:
        base = 0.0
        for r in (0.0, rate):
            stats: dict[str, float] = {}
            with faulty_server(LATENCY, r) as url:
                m, err = asyncio.run(run_dialforge(url, n, conc, stats))
            cps = n / m.wall
            base = base or cps
            print(
                f"| {conc} | {n} | {r:.0%} | {cps:.0f} | {cps / base:.0%} | {stats['retries']:.0f} | "
                f"{stats['limit']:.0f} | {stats['cuts']:.0f} | {err} |"
            )


async def run_thin(url: str, n: int, conc: int) -> tuple[Meter, int]:
    client = thin_openai_client(url, conc)
    sem = asyncio.Semaphore(conc)
    errors = 0

    async def one(i: int) -> None:
        nonlocal errors
        async with sem:
            try:
                await client.chat.completions.create(
                    model="bench", messages=[{"role": "user", "content": f"question {i}"}]
                )
            except Exception:
                errors += 1

    await one(-1)
    with Meter() as m:
        await asyncio.gather(*(one(i) for i in range(n)))
    await client.close()
    return m, errors


PROMPTS = [
    "How do tides work?",
    "Give me three tips for learning a new language.",
    "What is the difference between a list and a tuple in Python?",
    "Why is the sky blue?",
    "Write a haiku about autumn.",
    "How does a refrigerator keep food cold?",
    "What should I pack for a weekend hiking trip?",
    "Explain what a prime number is.",
]


@contextlib.contextmanager
def llamacpp_server(gguf: str) -> Iterator[str]:
    """llama-cpp-python's server (.venv-llamacpp) on the GGUF, as tests/test_real_server.py starts it."""
    import time
    import urllib.request
    from pathlib import Path

    py = Path(__file__).resolve().parents[1] / ".venv-llamacpp/bin/python"
    port = free_port()
    cmd = [str(py), "-m", "llama_cpp.server", "--model", gguf, "--host", "127.0.0.1", "--port", str(port)]
    p = subprocess.Popen([*cmd, "--n_ctx", "2048"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(360):
            try:
                urllib.request.urlopen(url + "/models", timeout=2).close()
                break
            except OSError:
                time.sleep(0.5)
        yield url
    finally:
        p.terminate()
        p.wait(20)


def run_llamacpp(n: int, max_tokens: int) -> None:
    """SmolLM2-135M: llama-cpp-python's server vs the in-process transformers backend (threads
    set as the backend sets them), greedy, the same prompts; completion tokens/s and calls/s."""
    import time

    from dialforge.embedded import gguf_path
    from dialforge.llm import SamplingParams
    from dialforge.llm.config import backend_config

    params = SamplingParams(max_tokens=max_tokens, temperature=0.0)
    reqs = [ChatRequest([{"role": "user", "content": PROMPTS[i % len(PROMPTS)] + f" ({i})"}], params) for i in range(n)]

    async def timed(backend, batch: bool) -> tuple[float, int]:  # type: ignore[no-untyped-def]
        await backend.chat(reqs[:1])  # warm up (load, first compile)
        t = time.perf_counter()
        if batch:
            comps = await backend.chat(reqs)
        else:
            comps = [c for r in reqs for c in await backend.chat([r])]
        wall = time.perf_counter() - t
        await backend.aclose()
        assert all(c.ok for c in comps), [c.error for c in comps if not c.ok][:1]
        return wall, sum(c.usage.completion_tokens for c in comps)

    rows = []
    with llamacpp_server(str(gguf_path())) as url:
        for conc in (1, 2):
            b = OpenAIHTTPBackend("smollm2", url, max_concurrency=conc)
            wall, toks = asyncio.run(timed(b, True))
            rows.append((f"llama.cpp server, {conc} in flight", wall, toks))
    for batch in (1, n):
        local = backend_config(model="smollm2-135m", batch_size=max(1, batch)).build()
        wall, toks = asyncio.run(timed(local, batch > 1))
        rows.append((f"in-process transformers, batch {batch}, 1 thread", wall, toks))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    print(f"SmolLM2-135M-Instruct (Q4_1 GGUF; in-process: its fp32 copy), {n} requests, greedy, <= {max_tokens} tokens")
    print("| backend | wall s | completion tokens | tokens/s | calls/s |")
    print("|---|---|---|---|---|")
    for name, wall, toks in rows:
        print(f"| {name} | {wall:.1f} | {toks} | {toks / wall:.1f} | {n / wall:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[16, 256])
    ap.add_argument("--rate-429", type=float, default=0.0, help="compare calls/s with this share of 429s")
    ap.add_argument("--llamacpp", action="store_true", help="in-process vs llama-cpp-python's server on SmolLM2")
    ap.add_argument("--max-tokens", type=int, default=64)
    args = ap.parse_args()
    if args.llamacpp:
        run_llamacpp(args.requests, args.max_tokens)
        return
    if args.rate_429:
        run_faults(args.rate_429, args.concurrency, args.requests)
        return
    rows = []
    with server_process(LATENCY) as url:
        for conc in args.concurrency:
            n = args.requests if conc >= 64 else min(args.requests, conc * 125)
            ideal = conc / LATENCY
            for name, fn in (("thin openai SDK", run_thin), ("dialforge", run_dialforge)):
                m, err = asyncio.run(fn(url, n, conc))
                rows.append((conc, n, name, n / m.wall, ideal, m.cpu / n * 1000, err))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    print(f"server: dialforge.testing.FakeOpenAIServer (aiohttp), answers after {LATENCY * 1000:.0f} ms")
    print("| in flight | requests | client | req/s | ideal req/s | achieved/ideal | client CPU ms/req | errors |")
    print("|---|---|---|---|---|---|---|---|")
    for conc, n, name, rps, ideal, cpu, err in rows:
        print(f"| {conc} | {n} | {name} | {rps:.0f} | {ideal:.0f} | {rps / ideal:.2f} | {cpu:.2f} | {err} |")
    by = {(r[0], r[2]): r for r in rows}
    for conc in args.concurrency:
        if (conc, "thin openai SDK") in by and (conc, "dialforge") in by:
            print(
                f"dialforge / thin client at {conc}: "
                f"{by[(conc, 'dialforge')][3] / by[(conc, 'thin openai SDK')][3]:.2f}x"
            )


if __name__ == "__main__":
    main()
