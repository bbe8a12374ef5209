"""Induction at scale: embed + cluster synthetic strategy sentences at 10k, 50k, 100k.

    python benchmarks/induce_scale.py [--sizes 10000 50000 100000] [--skip-embed]

Sentences are made programmatically from templates (no dialogue data). Reports embed time
(all-MiniLM-L6-v2, CPU), cluster time and peak memory of the clustering for each size, and
the adjusted Rand index of the default clustering against exact all-pairs threshold
clustering at 10k.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import resource
import threading
import time

import numpy as np
import psutil

from dialforge.induce import Embedder, cluster, exact_threshold_components

VERBS = ["Ask for", "Request", "Seek", "Inquire about", "Press for", "Look for", "Demand", "Probe for",
         "Push for", "Call for"]
OBJECTS = ["more details on", "a concrete example of", "the reasoning behind", "a comparison of",
           "the limitations of", "a simpler explanation of", "practical steps for", "the sources for",
           "alternatives to", "the risks of", "a summary of", "a counterargument to", "the history of",
           "numerical evidence for", "a visual description of", "edge cases in", "the cost of",
           "common mistakes in", "the assumptions in", "a step-by-step plan for"]
TARGETS = ["the previous answer", "the proposed solution", "the main claim", "the recommended approach",
           "the last point", "the code snippet", "the argument", "the method", "the definition",
           "the suggested plan", "the example given", "the conclusion", "the first step", "the trade-off",
           "the estimate", "the list of options", "the story", "the design", "the result", "the theory"]
TAILS = ["", " to clarify understanding", " to test the idea", " before deciding", " for a beginner",
         " in more depth", " with specifics", " to apply it", " from another angle", " briefly",
         " in plain words", " with numbers", " for a real case", " to verify it", " step by step",
         " and its exceptions", " under constraints", " in practice", " for comparison", " as a checklist",
         " for a report", " for an expert", " with sources", " with caveats", " quickly"]


def sentences(n: int, seed: int = 0) -> list[str]:
    combos = list(itertools.product(VERBS, OBJECTS, TARGETS, TAILS))
    assert n <= len(combos), len(combos)
    random.Random(seed).shuffle(combos)
    return [f"{v} {o} {t}{tail}" for v, o, t, tail in combos[:n]]


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
    args = ap.parse_args()
    emb_model = Embedder()
    emb_model.embed(["warm up"])
    biggest = max(args.sizes)
    texts = sentences(biggest)
    t = time.perf_counter()
    all_emb = emb_model.embed(texts)
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
    exact = exact_threshold_components(x, args.threshold)
    exact_s = time.perf_counter() - t
    ari = adjusted_rand_score(exact, cluster(x, args.threshold))
    ari_leader = adjusted_rand_score(exact, cluster(x, args.threshold, method="leader"))
    print(f"machine: {os.cpu_count()} cores; embedder all-MiniLM-L6-v2 on CPU: {rate:.0f} sentences/s "
          f"({biggest} embedded in {embed_s_biggest:.0f} s); threshold {args.threshold}; max RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB")
    print("| strategies | embed s | cluster s | cluster peak extra MiB | process peak MiB | clusters |")
    print("|---|---|---|---|---|---|")
    for n, e, c, extra, peak, k in rows:
        print(f"| {n} | {e:.0f} | {c:.1f} | {extra:.0f} | {peak:.0f} | {k} |")
    print(f"ARI at {n0} vs exact all-pairs threshold components ({exact_s:.1f} s): default {ari:.3f}, "
          f"published leader rule {ari_leader:.3f}")


if __name__ == "__main__":
    main()
