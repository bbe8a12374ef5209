"""Post-processing at scale, side by side with a baseline checkout in one run.

    python benchmarks/postprocess_scale.py files --n 20000 --baseline /tmp/perf-base/src
    python benchmarks/postprocess_scale.py memory --sizes 20000,100000
    python benchmarks/postprocess_scale.py embed --texts 300 --baseline /tmp/perf-base/src
    python benchmarks/postprocess_scale.py vectors --n 20000
    python benchmarks/postprocess_scale.py rouge
    python benchmarks/postprocess_scale.py batch

`files` builds a conversation file from real OASST messages (data/oasst: each synthetic
conversation strings 2-4 real user/assistant pairs picked at random, 1% of them planted near
duplicates: one word changed and "Thanks." appended), then runs `stats`, `filter`, `export`,
`dedup --near 0` (exact), `dedup` (exact + near) and `score --no-embedding` as subprocesses,
with this checkout and with `--baseline` (a `src` folder of the code before, e.g. from `git
archive`), reporting wall time and peak RSS (wait4) of each. `vectors` times embedding dedup
and clustering on MiniLM-like random vectors with planted neighbours; `embed` times the
embedder on real OASST user turns; `rouge` the tracker against rouge-score on STAR turns;
`batch` the in-process backend's generate batch size on the tiny model.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"


def load() -> str:
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


def build_file(path: Path, n: int, seed: int = 0) -> int:
    sys.path.insert(0, str(ROOT / "src"))
    from dialforge.io import read_conversations

    threads = read_conversations(DATA / "oasst/en_100_tree.jsonl", "oasst")
    pairs = [
        (c.messages[i].content, c.messages[i + 1].content)
        for c in threads
        for i in range(len(c.messages) - 1)
        if c.messages[i].role == "user" and c.messages[i + 1].role == "assistant"
    ]
    rng = random.Random(seed)
    planted = 0
    recs: list[dict[str, object]] = []
    with path.open("w") as f:
        for i in range(n):
            if recs and rng.random() < 0.01:
                src = rng.choice(recs[-1000:])
                msgs = [dict(m) for m in src["messages"]]  # type: ignore[union-attr]
                words = msgs[-1]["content"].split()
                words[len(words) // 2] = "EDITED"
                msgs[-1]["content"] = " ".join(words) + " Thanks."
                rec = {"id": f"planted-{i}", "messages": msgs, "meta": {"planted_from": src["id"]}}
                planted += 1
            else:
                msgs = []
                for u, a in rng.sample(pairs, rng.randint(2, 4)):
                    msgs += [{"role": "user", "content": u}, {"role": "assistant", "content": a}]
                rec = {"id": f"c{i}", "messages": msgs, "meta": {"source": "bench"}}
            recs.append(rec)
            if len(recs) > 2000:
                recs = recs[-1000:]
            f.write(json.dumps(rec) + "\n")
    return planted


def timed(cmd: list[str], src: Path) -> tuple[float, float, float, int]:
    """(wall s, CPU s, peak RSS MiB, exit code) of one CLI run with `src` first on the path.
    CPU time (user + system, from wait4) is the figure to compare on a loaded machine."""
    env = {**os.environ, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    t = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "dialforge.cli", *cmd], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)  # fmt: skip
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    if status:
        sys.stderr.write(p.stderr.read().decode()[-2000:] if p.stderr else "")
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def files(args: argparse.Namespace) -> None:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    data = work / f"convs_{args.n}.jsonl"
    planted = build_file(data, args.n)
    print(f"file: {args.n} conversations, {data.stat().st_size / 2**20:.0f} MiB, {planted} planted near duplicates")
    print(f"start: {load()}")
    versions = [("this branch", ROOT / "src")] + ([("baseline", Path(args.baseline))] if args.baseline else [])
    print("| command | " + " | ".join(f"{v} wall s | {v} CPU s | {v} peak MiB" for v, _ in versions) + " |")
    print("|---|" + "---|---|---|" * len(versions))
    for name, cmd in [
        ("stats", ["stats", str(data)]),
        ("filter", ["filter", str(data), "--where", "user_turns >= 3", "--out", str(work / "f.jsonl")]),
        ("export sharegpt", ["export", str(data), "--to", "sharegpt", "--out", str(work / "e.json")]),
        ("dedup exact", ["dedup", str(data), "--near", "0", "--out", str(work / "x.jsonl")]),
        ("dedup exact+near", ["dedup", str(data), "--out", str(work / "d.jsonl")]),
        ("score --no-embedding", ["score", str(data), "--no-embedding"]),
    ]:
        cells = []
        for _, src in versions:
            wall, cpu, rss, rc = timed(cmd, src)
            cells += [f"{wall:.1f}" + ("" if rc == 0 else f" (exit {rc})"), f"{cpu:.1f}", f"{rss:.0f}"]
            if name == "dedup exact+near" and src == ROOT / "src":
                removed = [json.loads(x) for x in (work / "d.removed.jsonl").read_text().splitlines()]
                near = [r for r in removed if r["reason"].startswith("near")]
                hits = sum(1 for r in near if r["id"].startswith("planted-"))
                recall_line = (
                    f"near dedup: {hits}/{planted} planted found (recall {hits / max(planted, 1):.3f}), "
                    f"{len(near) - hits} other removals"
                )
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    print(recall_line)
    n_near, below = verify(work / "d.removed.jsonl", data)
    print(f"false positives (exact Jaccard of the pair < 0.8, checked with Python sets): {below} of {n_near}")
    print(f"end: {load()}")


def memory(args: argparse.Namespace) -> None:
    """Peak RSS at two sizes (`--sizes`, default 20k and 100k): a command whose memory does
    not grow with the data has a ratio near 1 (the check: <= 1.3); and `score --no-embedding`
    against one `stats` pass in CPU seconds at the larger size (the check: <= 3x)."""
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    sizes = [int(x) for x in args.sizes.split(",")]
    print(f"start: {load()}")
    peaks: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    for n in sizes:
        data = work / f"convs_{n}.jsonl"
        if not data.exists():
            build_file(data, n)
        for name, cmd in [
            ("stats", ["stats", str(data)]),
            ("score --no-embedding", ["score", str(data), "--no-embedding"]),
            ("dedup exact", ["dedup", str(data), "--near", "0", "--out", str(work / f"x{n}.jsonl")]),
            ("dedup exact+near", ["dedup", str(data), "--out", str(work / f"d{n}.jsonl")]),
        ]:
            wall, cpu, rss, rc = timed(cmd, ROOT / "src")
            assert rc == 0, (name, n, rc)
            peaks.setdefault(name, []).append(rss)
            cpus.setdefault(name, []).append(cpu)
            print(f"{n} conversations, {name}: {wall:.1f} s wall, {cpu:.1f} s CPU, {rss:.0f} MiB peak", flush=True)
    print("| command | " + " | ".join(f"peak MiB at {n:,}" for n in sizes) + " | ratio | check <= 1.3 |")
    print("|---|" + "---|" * len(sizes) + "---|---|")
    for name, rss in peaks.items():
        ratio = rss[-1] / rss[0]
        print(
            f"| {name} | "
            + " | ".join(f"{r:.0f}" for r in rss)
            + f" | {ratio:.2f} | {'ok' if ratio <= 1.3 else 'FAIL'} |"
        )
    for i, n in enumerate(sizes):
        r = cpus["score --no-embedding"][i] / cpus["stats"][i]
        print(
            f"score --no-embedding / stats at {n:,}: {r:.2f}x CPU"
            + (f" (check <= 3: {'ok' if r <= 3 else 'FAIL'})" if i == len(sizes) - 1 else "")
        )
    print(f"end: {load()}")


def verify(removed_path: Path, data: Path, threshold: float = 0.8) -> tuple[int, int]:
    """(near removals, removals whose exact Jaccard of word 3-gram sets is below the
    threshold): an independent check with Python sets on the texts as written."""
    removed = [json.loads(x) for x in removed_path.read_text().splitlines()]
    near = [r for r in removed if r["reason"].startswith("near")]
    wanted = {r["id"] for r in near} | {r["duplicate_of"] for r in near}
    texts = {}
    with data.open() as f:
        for line in f:
            rec = json.loads(line)
            if rec["id"] in wanted:
                w = " ".join(m["content"] for m in rec["messages"]).lower().split()
                texts[rec["id"]] = {tuple(w[i : i + 3]) for i in range(len(w) - 2)} or {tuple(w)}
    below = 0
    for r in near:
        a, b = texts[r["id"]], texts[r["duplicate_of"]]
        below += len(a & b) / len(a | b) < threshold
    return len(near), below


def vectors(args: argparse.Namespace) -> None:
    import numpy as np

    sys.path.insert(0, str(ROOT / "src"))
    from dialforge.induce.cluster import cluster, exact_threshold_clustering
    from dialforge.score.dedup import embedding_duplicates

    rng = np.random.default_rng(0)
    n, d = args.n, 384
    centres = rng.standard_normal((n // 25, d)).astype(np.float32)
    x = centres[rng.integers(0, len(centres), n)] + 1.2 * rng.standard_normal((n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    print(f"start: {load()}; {n} x {d} vectors, families of about 25")
    t, c = time.perf_counter(), time.process_time()
    dup = embedding_duplicates(x, 0.9)
    print(f"embedding dedup (cosine >= 0.9, blocked): {time.perf_counter() - t:.1f} s wall, "
          f"{time.process_time() - c:.1f} s CPU, {int((dup >= 0).sum())} removed", flush=True)  # fmt: skip
    for kernel in ("blocked", "faiss") if n <= 20_000 else ("blocked",):
        t = time.perf_counter()
        c = time.process_time()
        labels = cluster(x, 0.5, kernel=kernel)  # type: ignore[arg-type]
        print(f"cluster {n} at 0.5, kernel {kernel}: {time.perf_counter() - t:.1f} s wall, "
              f"{time.process_time() - c:.1f} s CPU, {len(set(labels))} clusters", flush=True)  # fmt: skip
    m = min(n, 10_000)
    from sklearn.metrics import adjusted_rand_score

    exact = exact_threshold_clustering(x[:m], 0.5)
    print(f"ARI at {m} vs exact all-pairs Butina: {adjusted_rand_score(exact, cluster(x[:m], 0.5)):.4f}")
    print(f"end: {load()}")


def embed(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT / "src"))
    import tempfile

    from dialforge.induce.embed import Embedder
    from dialforge.io import read_conversations

    convs = read_conversations(DATA / "oasst/en_100_tree.jsonl", "oasst")
    texts = list(dict.fromkeys(m.content for c in convs for m in c.messages if m.role == "user"))[: args.texts]
    e = Embedder(cache_dir=tempfile.mkdtemp())
    model = e._load()
    model.encode(["warm up"])
    print(f"start: {load()}; {len(texts)} real OASST user turns")
    for rep in range(2):
        t = time.perf_counter()
        model.encode(texts, batch_size=128, normalize_embeddings=True)  # before: one encode call, batch 128
        before = time.perf_counter() - t
        t = time.perf_counter()
        e.encode(texts)
        after = time.perf_counter() - t
        print(f"round {rep + 1}: batch 128 {before:.1f} s, length-bucketed {after:.1f} s ({before / after:.1f}x)")
    t = time.perf_counter()
    Embedder(cache_dir=e.cache_dir).embed(texts)
    e.embed(texts)
    t = time.perf_counter()
    Embedder(cache_dir=e.cache_dir).embed(texts)
    print(f"cached (new Embedder on the same folder): {time.perf_counter() - t:.2f} s; end: {load()}")


def rouge(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT / "src"))
    from rouge_score import rouge_scorer

    from dialforge.workflows.tracker import rouge_l

    turns = []
    for line in (DATA / "star/star_dialogues_subset.jsonl").read_text().splitlines():
        turns += [e["Text"] for e in json.loads(line)["Events"] if e.get("Text")]
    rng = random.Random(0)
    pairs = [(rng.choice(turns), rng.choice(turns)) for _ in range(20_000)]
    ref = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    t = time.perf_counter()
    a = [ref.score(y, x)["rougeL"].fmeasure for x, y in pairs]
    before = time.perf_counter() - t
    t = time.perf_counter()
    b = [rouge_l(x, y) for x, y in pairs]
    after = time.perf_counter() - t
    same = max(abs(p - q) for p, q in zip(a, b, strict=True))
    print(f"{load()}: {len(pairs)} STAR pairs: rouge-score {before:.2f} s, rapidfuzz {after:.2f} s "
          f"({before / after:.0f}x), max difference {same}")  # fmt: skip


def batch(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT / "src"))
    import asyncio
    import tempfile

    from dialforge.llm.local import TransformersBackend
    from dialforge.llm.types import ChatRequest, SamplingParams
    from dialforge.tiny import build_tiny_model

    texts = [json.loads(x) for x in (DATA / "oasst/prompt_lottery_en_250_text.jsonl").read_text().splitlines()]
    path = build_tiny_model(Path(tempfile.mkdtemp()) / "tiny", texts, vocab_size=1024)
    reqs = [
        ChatRequest(messages=[{"role": "user", "content": t}], params=SamplingParams(max_tokens=32, temperature=1.0))
        for t in texts[: args.requests]
    ]
    print(f"start: {load()}; {len(reqs)} requests of 32 new tokens on the tiny model")
    backends = {bs: TransformersBackend(str(path), batch_size=bs) for bs in (16, 32, 64)}

    async def go(backend: TransformersBackend) -> None:
        await asyncio.gather(*(backend.chat([r]) for r in reqs))

    for b in backends.values():  # load and warm up every size before timing any
        b.load()
        asyncio.run(go(b))
    for rnd, sizes in enumerate(((16, 32, 64), (64, 32, 16))):  # both orders: load drifts
        for bs in sizes:
            t, c = time.perf_counter(), time.process_time()
            asyncio.run(go(backends[bs]))
            dt, cpu = time.perf_counter() - t, time.process_time() - c
            print(f"round {rnd + 1}, batch {bs}: {dt:.1f} s wall, {cpu:.1f} s CPU, {len(reqs) / dt:.1f} requests/s, "
                  f"{len(reqs) / cpu:.1f} requests per CPU s", flush=True)  # fmt: skip
    print(f"end: {load()}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["files", "memory", "vectors", "embed", "rouge", "batch"])
    ap.add_argument("--sizes", default="20000,100000", help="memory: the two (or more) file sizes")
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--texts", type=int, default=300)
    ap.add_argument("--requests", type=int, default=128)
    ap.add_argument("--baseline", default=None, help="src folder of the code to compare with")
    ap.add_argument("--work", default="/tmp/dialforge-bench-post")
    args = ap.parse_args()
    {"files": files, "memory": memory, "vectors": vectors, "embed": embed, "rouge": rouge, "batch": batch}[args.what](
        args
    )


if __name__ == "__main__":
    main()
