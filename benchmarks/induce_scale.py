"""Induction at scale: embed + cluster synthetic strategy sentences at 10k, 50k, 100k.

    python benchmarks/induce_scale.py [--sizes 10000 50000 100000] [--embeddings E.npy]

`DIALFORGE_BENCH_SAVE=E.npy` saves the embeddings of a run; `--embeddings E.npy` reuses them
(the clustering figures without an hour of embedding on a busy CPU).

Sentences are made programmatically from templates (no dialogue data). Reports embed time
(all-MiniLM-L6-v2, CPU), cluster time and peak memory of the clustering for each size, and
the adjusted Rand index of the default clustering against exact all-pairs threshold
clustering at 10k.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import threading
import time
from pathlib import Path

import psutil

from dialforge.induce import Embedder, cluster, exact_threshold_clustering

VERBS = ["Ask for", "Request", "Seek", "Inquire about", "Press for", "Look for", "Probe", "Push for"]
TAILS = [
    "",
    " to clarify understanding",
    " before deciding",
    " in more depth",
    " with specifics",
    " step by step",
    " in practice",
    " briefly",
    " with examples",
    " for comparison",
]


def _vocab() -> list[str]:
    """Whole English words from the embedder's own WordPiece vocabulary (no dialogue data)."""
    from dialforge.induce.embed import resolve_embedder

    words = Path(resolve_embedder("all-MiniLM-L6-v2"), "vocab.txt").read_text().split()
    return sorted({w for w in words if w.isalpha() and w.islower() and 5 <= len(w) <= 10})


def sentences(n: int, per_family: int = 25, seed: int = 0) -> tuple[list[str], list[int]]:
    """`n` strategy-like sentences in planted families of about `per_family`: a family owns
    five content words; each member uses four of them in a random order after a common verb.
    Returns the sentences and their family (planted, not ground truth at a threshold)."""
    rng = random.Random(seed)
    vocab = _vocab()
    out, fam = [], []
    families = (n + per_family - 1) // per_family
    for f in range(families):
        words = rng.sample(vocab, 5)
        for _ in range(per_family):
            if len(out) == n:
                break
            w = rng.sample(words, 4)
            out.append(f"{rng.choice(VERBS)} {w[0]} {w[1]} for {w[2]} {w[3]}")
            fam.append(f)
    order = list(range(n))
    rng.shuffle(order)
    return [out[i] for i in order], [fam[i] for i in order]


class PeakRSS:
    """Peak resident memory of this process during a block (sampled every 20 ms)."""

    def __enter__(self) -> PeakRSS:
        self._p = psutil.Process()
        self.base = self._p.memory_info().rss
        self.peak = self.base
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._p.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self._p.memory_info().rss)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--embeddings", default=None, help=".npy of the sentences' embeddings (skips embedding)")
    args = ap.parse_args()
    emb_model = Embedder(cache_dir=os.environ.get("DIALFORGE_BENCH_CACHE", "/tmp/dialforge-bench-emb"))
    emb_model.embed(["warm up"])
    biggest = max(args.sizes)
    t = time.perf_counter()
    if args.embeddings:  # embeddings of sentences(N) for the file's N (prefixes are the smaller sizes)
        import numpy as np

        saved = np.load(args.embeddings)
        texts, families = sentences(len(saved))
        all_emb = saved[:biggest]
    else:
        texts, families = sentences(biggest)
        all_emb = emb_model.embed(texts)
        if os.environ.get("DIALFORGE_BENCH_SAVE"):
            import numpy as np

            np.save(os.environ["DIALFORGE_BENCH_SAVE"], all_emb)
    embed_s_biggest = time.perf_counter() - t
    rate = biggest / embed_s_biggest
    rows = []
    for n in sorted(args.sizes):
        x = all_emb[:n]
        with PeakRSS() as mem:
            t = time.perf_counter()
            labels = cluster(x, args.threshold)
            cl_s = time.perf_counter() - t
        rows.append((n, n / rate, cl_s, (mem.peak - mem.base) / 2**20, mem.peak / 2**20, len(set(labels))))
    n0 = min(args.sizes)
    x = all_emb[:n0]
    from sklearn.metrics import adjusted_rand_score

    t = time.perf_counter()
    exact = exact_threshold_clustering(x, args.threshold)
    exact_s = time.perf_counter() - t
    ari = adjusted_rand_score(exact, cluster(x, args.threshold))
    ari_leader = adjusted_rand_score(exact, cluster(x, args.threshold, method="leader"))
    ari_planted = adjusted_rand_score(families[:n0], exact)
    print(
        f"machine: {os.cpu_count()} cores; "
        + (
            f"embeddings loaded from {args.embeddings}"
            if args.embeddings
            else f"embedder all-MiniLM-L6-v2 on CPU: {rate:.0f} sentences/s "
            f"({biggest} embedded in {embed_s_biggest:.0f} s)"
        )
        + f"; threshold {args.threshold}; max RSS "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB"
    )
    print("| strategies | embed s | cluster s | cluster peak extra MiB | process peak MiB | clusters |")
    print("|---|---|---|---|---|---|")
    for n, e, c, extra, peak, k in rows:
        print(f"| {n} | {e:.0f} | {c:.1f} | {extra:.0f} | {peak:.0f} | {k} |")
    print(
        f"ARI at {n0} vs exact all-pairs Butina ({exact_s:.1f} s): default {ari:.3f}, "
        f"published leader rule {ari_leader:.3f}; exact vs the planted families {ari_planted:.3f} "
        f"({len(set(exact))} exact clusters, {len(set(families[:n0]))} planted families)"
    )


if __name__ == "__main__":
    main()
