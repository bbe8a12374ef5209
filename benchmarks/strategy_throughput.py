"""Strategy mode (IDEAS deduction) vs persona mode on the same loopback server: calls/s at
64 conversations in flight. Strategy mode embeds each conversation's last answer to rank the
library; the answers of all live conversations are embedded together (EmbedBatcher). The
baseline in the same run is the previous path: one embedding call per answer under a lock.

    python benchmarks/strategy_throughput.py [--conversations 256] [--concurrency 64]
    python benchmarks/strategy_throughput.py --embed-probe   # MiniLM texts/s on the server's answers
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile

import orjson
from _common import Meter, server_process

from dialforge.induce.embed import Embedder
from dialforge.induce.library import Strategy, StrategyLibrary
from dialforge.llm import backend_config
from dialforge.simulate import SimulateConfig, simulate_async

LATENCY = 0.05


def synthetic_library(path: str, n: int = 200) -> None:
    """Obviously synthetic strategies, each with 4 synthetic provenance answers."""
    emb = Embedder()
    texts = [f"Strategy {i}: ask about aspect {i} of the answer" for i in range(n)]
    cents = emb.embed(texts)
    lib = StrategyLibrary(
        created_at="bench",
        embedder=emb.name,
        threshold=0.5,
        method="butina",
        abstraction_model="none",
        sources=[],
        counts={},
        strategies=[
            Strategy(
                id=f"s-{i}",
                text=t,
                size=4,
                members=[f"m{i}"],
                examples=[],
                centroid=[float(x) for x in cents[i]],
                abstracted=True,
                contexts=[f"synthetic answer {i}.{k} about item {i * 7 + k}" for k in range(4)],
            )
            for i, t in enumerate(texts)
        ],
    )
    lib.save(path)


def locked_one_at_a_time() -> None:
    """The previous behaviour, for the baseline row: one answer per embedding call, serialised."""
    lock = asyncio.Lock()

    async def embed(self, text):  # type: ignore[no-untyped-def]
        async with lock:
            return (await asyncio.to_thread(self.embedder.embed, [text]))[0]

    from dialforge.induce.batcher import EmbedBatcher

    EmbedBatcher.embed = embed  # type: ignore[method-assign]


def run(mode: str, url: str, args: argparse.Namespace, tmp: str, library: str, seeds: str) -> tuple[float, int, float]:
    cfg = SimulateConfig(
        mode=mode,  # type: ignore[arg-type]
        seeds={"questions": [seeds]},
        max_turns=args.rounds,
        personas=["a curious student"] if mode == "persona" else [],
        strategy={"library": library, "ranker": "provenance"} if mode == "strategy" else None,
        user=backend_config(model="sim", base_url=url, max_concurrency=args.concurrency),
        assistant=backend_config(model="asst", base_url=url, max_concurrency=args.concurrency),
        concurrency=args.concurrency,
        stop={"role_flip": False},
    )
    out = os.path.join(tmp, f"run-{mode}-{len(os.listdir(tmp))}")
    with Meter() as m:
        asyncio.run(simulate_async(cfg, out, progress=False, use_cache=False))
    usage = orjson.loads(open(os.path.join(out, "usage.json"), "rb").read())
    sent = sum(c["calls"] for c in usage["totals"].values())
    return sent / m.wall, sent, m.cpu / sent * 1000


def embed_probe() -> None:
    """How fast the embedder turns answers of the loopback server's shape (two UUIDs) into
    vectors, by batch size: the ceiling on strategy mode's answer vectors per second."""
    import time
    import uuid

    emb = Embedder(cache_dir=tempfile.mkdtemp())
    model = emb._load()
    emb.embed(["warm up"])
    sample = f"{uuid.uuid4().hex} {uuid.uuid4().hex}?"
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; "
          f"{len(model.tokenizer(sample)['input_ids'])} tokens per answer")  # fmt: skip
    for bs in (1, 8, 64, 256):
        texts = [f"{uuid.uuid4().hex} {uuid.uuid4().hex}?" for _ in range(256)]
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(0, len(texts), bs):
            emb.embed(texts[i : i + bs])
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(f"batch {bs}: {len(texts) / wall:.0f} answers/s, {cpu / len(texts) * 1000:.1f} ms CPU per answer")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--embed-probe", action="store_true", help="only time the embedder on answers")
    ap.add_argument("--conversations", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--concurrency", type=int, default=64)
    args = ap.parse_args()
    if args.embed_probe:
        embed_probe()
        return
    with server_process(LATENCY, unique=True) as url, tempfile.TemporaryDirectory() as tmp:
        library = os.path.join(tmp, "library.json")
        synthetic_library(library)
        seeds = os.path.join(tmp, "seeds.txt")
        with open(seeds, "w") as f:
            f.write("\n".join(f"Synthetic opening question number {i}?" for i in range(args.conversations)) + "\n")
        Embedder().embed(["warm up"])  # load the model outside the timed runs
        # once per library, not per run: the provenance contexts are cached beside the library
        lib = StrategyLibrary.load(library)
        contexts = [t for s in lib.strategies for t in s.contexts]
        with Meter() as once:
            Embedder(cache_dir=tmp).embed(contexts)
        persona, n_p, c_p = run("persona", url, args, tmp, library, seeds)
        strategy, n_s, c_s = run("strategy", url, args, tmp, library, seeds)
        from dialforge.induce.batcher import EmbedBatcher

        b = EmbedBatcher.live[-1]
        batching = f"{b.texts} answers in {b.batches} embedding calls"
        locked_one_at_a_time()
        before, n_b, c_b = run("strategy", url, args, tmp, library, seeds)
    ideal = args.concurrency / LATENCY
    print(
        f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; server answers after "
        f"{LATENCY * 1000:.0f} ms; {args.conversations} conversations x {args.rounds} rounds, "
        f"{args.concurrency} in flight; strategy mode = simulator + judge (assistant model) + assistant calls"
    )
    print(f"once per library (before the runs): {len(contexts)} provenance contexts embedded in {once.wall:.1f} s")
    print(f"batched run: {batching}")
    print("| mode | calls | calls/s | achieved/ideal | vs persona | client CPU ms/call |")
    print("|---|---|---|---|---|---|")
    for name, rate, n, cpu in (
        ("persona", persona, n_p, c_p),
        ("strategy, batched embeddings (now)", strategy, n_s, c_s),
        ("strategy, one embedding per answer under a lock (before)", before, n_b, c_b),
    ):
        print(f"| {name} | {n} | {rate:.0f} | {rate / ideal:.2f} | {rate / persona:.2f}x | {cpu:.1f} |")


if __name__ == "__main__":
    main()
