"""Throughput of the OpenAI-compatible backend against a loopback server answering after a
fixed latency, side by side with the ideal (concurrency / latency) and a thin client
(plain asyncio + the openai SDK, connection pool sized to the concurrency).

    python benchmarks/backend_throughput.py [--requests 10000] [--concurrency 16 256]

Server and client share the machine: at high concurrency CPU, not latency, bounds it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform

from _common import Meter, server_process, thin_openai_client

from dialforge.llm import ChatRequest
from dialforge.llm.http import OpenAIHTTPBackend

LATENCY = 0.05


async def run_dialforge(url: str, n: int, conc: int) -> tuple[Meter, int]:
    backend = OpenAIHTTPBackend("bench", url, max_concurrency=conc, max_retries=3)
    await backend.chat([ChatRequest([{"role": "user", "content": "warm up"}])])
    reqs = [ChatRequest([{"role": "user", "content": f"question {i}"}]) for i in range(n)]
    with Meter() as m:
        # the backend's own limiter caps what is in flight; hand it everything at once
        comps = await backend.chat(reqs)
    await backend.aclose()
    return m, sum(1 for c in comps if not c.ok)


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[16, 256])
    args = ap.parse_args()
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
