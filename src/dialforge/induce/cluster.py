"""Threshold clustering of normalised embeddings, in memory linear in n.

Neighbours above the cosine threshold come from a k-nearest-neighbour search (FAISS; exact
below `exact_below` points, IVF above), so memory is O(n k) instead of O(n^2).

- `butina` (default, order-independent): Butina/Taylor sphere exclusion. The strategy with
  the most neighbours above the threshold becomes a centre and takes all its unassigned
  neighbours; repeat. Clusters are balls of radius `threshold` around a centre, like the
  published rule, but the order comes from the data, not from the input file.
- `components`: connected components of the threshold graph (single linkage). Order-
  independent too, but it chains: on sentence embeddings at 0.5 a few long chains swallow
  most points (see docs/benchmarks.md), so it is not the default.
- `leader` (the published rule): in input order, each unassigned point becomes a leader and
  takes every point above the threshold; a point already taken moves to a later leader only
  if it is more similar to it. Order-dependent, kept for fidelity.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Method = Literal["butina", "components", "leader"]


def knn(x: np.ndarray, k: int, exact_below: int = 20_000, nprobe: int = 16,
        seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(similarities, indices) of each row's k nearest rows by inner product."""
    import faiss

    n, d = x.shape
    k = min(k, n)
    x = np.ascontiguousarray(x, dtype=np.float32)
    if n < exact_below:
        index = faiss.IndexFlatIP(d)
    else:
        nlist = int(4 * np.sqrt(n))
        quant = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFFlat(quant, d, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(seed)
        train = x[rng.choice(n, size=min(n, nlist * 40), replace=False)]
        index.cp.seed = seed
        index.train(train)
        index.nprobe = nprobe
    index.add(x)
    sims = np.empty((n, k), dtype=np.float32)
    idx = np.empty((n, k), dtype=np.int64)
    step = 8192
    for s in range(0, n, step):
        sims[s:s + step], idx[s:s + step] = index.search(x[s:s + step], k)
    return sims, idx


def _components(n: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    g = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n))
    _, labels = connected_components(g, directed=False)
    return _canonical(labels)


def _canonical(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters by first appearance so labels do not depend on internals."""
    _, first = np.unique(labels, return_index=True)
    order = np.argsort(first)
    remap = np.empty(len(order), dtype=np.int64)
    remap[order] = np.arange(len(order))
    return remap[np.searchsorted(np.unique(labels), labels)]


def cluster(x: np.ndarray, threshold: float = 0.5, method: Method = "butina", k: int = 64,
            exact_below: int = 20_000) -> np.ndarray:
    """Cluster labels (0..m-1) for normalised rows of `x`."""
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if method == "leader":
        return leader_cluster(x, threshold, k=max(k, 256), exact_below=exact_below)
    sims, idx = knn(x, k, exact_below=exact_below)
    mask = (sims >= threshold) & (idx >= 0)
    if method == "butina":
        return _butina(n, [idx[i][mask[i]] for i in range(n)], np.where(mask, sims, 0).sum(axis=1))
    rows = np.repeat(np.arange(n), idx.shape[1])[mask.ravel()]
    return _components(n, rows, idx.ravel()[mask.ravel()])


def _butina(n: int, neighbours: list[np.ndarray], weight: np.ndarray) -> np.ndarray:
    """Sphere exclusion: centres in order of neighbour count (then summed similarity)."""
    counts = np.fromiter((len(nb) for nb in neighbours), dtype=np.int64, count=n)
    order = np.lexsort((np.arange(n), -weight, -counts))
    label = np.full(n, -1, dtype=np.int64)
    for i in order:
        if label[i] != -1:
            continue
        nb = neighbours[i]
        free = nb[label[nb] == -1]
        label[free] = i
        label[i] = i
    return _canonical(label)


def leader_cluster(x: np.ndarray, threshold: float = 0.5, k: int = 256,
                   exact_below: int = 20_000) -> np.ndarray:
    """The published greedy leader rule, with each leader's reach limited to its k nearest
    neighbours (the published code scans all n; k bounds memory)."""
    n = len(x)
    sims, idx = knn(x, k, exact_below=exact_below)
    label = np.full(n, -1, dtype=np.int64)
    best = np.full(n, -np.inf, dtype=np.float32)
    for i in range(n):
        if label[i] != -1:
            continue
        label[i], best[i] = i, 1.0
        for s, j in zip(sims[i], idx[i], strict=True):
            if j < 0 or s <= threshold:
                continue
            if s > best[j]:
                label[j], best[j] = i, s
    return _canonical(label)


def exact_threshold_clustering(x: np.ndarray, threshold: float = 0.5, method: Method = "butina",
                               block: int = 2048) -> np.ndarray:
    """Reference: the same rule over the full all-pairs threshold graph (blocked, so memory
    stays O(block * n) plus the edges; time O(n^2)). For benchmarks and tests."""
    n = len(x)
    rows, cols, ws = [], [], []
    for s in range(0, n, block):
        sim = x[s:s + block] @ x.T
        r, c = np.nonzero(sim >= threshold)
        rows.append(r + s)
        cols.append(c)
        ws.append(sim[r, c])
    r, c, w = np.concatenate(rows), np.concatenate(cols), np.concatenate(ws)
    if method == "components":
        return _components(n, r, c)
    if method != "butina":
        raise ValueError(f"no exact reference for {method!r}")
    order = np.argsort(r, kind="stable")
    r, c, w = r[order], c[order], w[order]
    bounds = np.searchsorted(r, np.arange(n + 1))
    neighbours = [c[bounds[i]:bounds[i + 1]] for i in range(n)]
    weight = np.bincount(r, weights=w, minlength=n)
    return _butina(n, neighbours, weight)
