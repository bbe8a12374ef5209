"""Self-play engine throughput: 2,000 conversations x 4 rounds (16,000 calls) against the
loopback server answering after 50 ms, 256 conversations alive at once; compared with a
plain sequential loop over the same server (measured on a slice and reported as a rate).

    python benchmarks/engine_throughput.py [--conversations 2000] [--concurrency 256]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import tempfile

import orjson
from _common import Meter, server_process, thin_openai_client

from dialforge.llm import ChatRequest, backend_config
from dialforge.llm.http import OpenAIHTTPBackend
from dialforge.simulate import SimulateConfig, simulate_async

LATENCY = 0.05


async def sequential(url: str, conversations: int, rounds: int) -> Meter:
    """The naive loop: one conversation at a time, one request at a time."""
    b = OpenAIHTTPBackend("sim", url, max_concurrency=1)
    with Meter() as m:
        for c in range(conversations):
            msgs: list[dict[str, str]] = []
            for r in range(rounds):
                for role in ("user", "assistant"):
                    comp = (await b.chat([ChatRequest(msgs + [{"role": "user", "content": f"c{c} r{r} {role}"}])]))[0]
                    msgs.append({"role": role, "content": comp.text})
    await b.aclose()
    return m


async def thin_client(url: str, conversations: int, rounds: int, conc: int) -> Meter:
    """The same self-play with plain asyncio + the openai SDK (pool sized to the concurrency)."""
    client = thin_openai_client(url, conc)
    sem = asyncio.Semaphore(conc)

    async def conv(c: int) -> None:
        async with sem:
            msgs: list[dict[str, str]] = []
            for r in range(rounds):
                for role, model in (("user", "sim"), ("assistant", "asst")):
                    resp = await client.chat.completions.create(
                        model=model, messages=msgs + [{"role": "user", "content": f"c{c} r{r}"}]
                    )
                    msgs.append({"role": role, "content": resp.choices[0].message.content or ""})

    with Meter() as m:
        await asyncio.gather(*(conv(c) for c in range(conversations)))
    await client.close()
    return m


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--conversations", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--concurrency", type=int, default=256)
    ap.add_argument("--sequential-slice", type=int, default=10)
    args = ap.parse_args()
    calls = args.conversations * args.rounds * 2
    with server_process(LATENCY, unique=True) as url, tempfile.TemporaryDirectory() as tmp:
        cfg = SimulateConfig(
            mode="socratic",
            seeds={"free": args.conversations},
            max_turns=args.rounds,
            user=backend_config(model="sim", base_url=url, max_concurrency=args.concurrency),
            assistant=backend_config(model="asst", base_url=url, max_concurrency=args.concurrency),
            concurrency=args.concurrency,
            stop={"role_flip": False},
        )
        with Meter() as m:
            summary = asyncio.run(simulate_async(cfg, os.path.join(tmp, "run"), progress=False))
        usage = orjson.loads(open(os.path.join(tmp, "run", "usage.json"), "rb").read())
        sent = sum(c["calls"] for c in usage["totals"].values())
        seq = asyncio.run(sequential(url, args.sequential_slice, args.rounds))
        thin = asyncio.run(thin_client(url, args.conversations, args.rounds, args.concurrency))
    seq_calls = args.sequential_slice * args.rounds * 2
    ideal = args.concurrency / LATENCY
    print(f"dialforge / thin client: {(sent / m.wall) / (calls / thin.wall):.2f}x")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"machine: {os.cpu_count()} cores; server answers after {LATENCY * 1000:.0f} ms; "
        f"{args.conversations} conversations x {args.rounds} rounds, {args.concurrency} alive"
    )
    print(f"termination: {summary['termination_reasons']}; calls sent: {sent} (expected {calls})")
    print("| loop | calls/s | ideal calls/s | achieved/ideal | client CPU ms/call | wall s | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    print(
        f"| dialforge engine ({args.concurrency} alive) | {sent / m.wall:.0f} | {ideal:.0f} | "
        f"{sent / m.wall / ideal:.2f} | {m.cpu / sent * 1000:.2f} | {m.wall:.1f} | {peak:.0f} |"
    )
    print(
        f"| thin client: asyncio + openai SDK ({args.concurrency} alive) | {calls / thin.wall:.0f} | {ideal:.0f} | "
        f"{calls / thin.wall / ideal:.2f} | {thin.cpu / calls * 1000:.2f} | {thin.wall:.1f} | - |"
    )
    print(
        f"| plain sequential loop ({args.sequential_slice} conversations) | {seq_calls / seq.wall:.1f} | "
        f"{1 / LATENCY:.0f} | {seq_calls / seq.wall * LATENCY:.2f} | {seq.cpu / seq_calls * 1000:.2f} | "
        f"{seq.wall:.1f} (x{calls / seq_calls:.0f} = {seq.wall * calls / seq_calls:.0f} s for all) | - |"
    )


if __name__ == "__main__":
    main()
