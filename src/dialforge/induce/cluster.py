"""Threshold clustering of normalised embeddings, in memory linear in n.

Neighbours above the cosine threshold come from a k-nearest-neighbour search (FAISS), with
a range search for the few hubs whose k-th neighbour is still above the threshold, so
memory is O(n k) instead of O(n^2). The search is exact (flat index, O(n^2 d) time: about
35 s for 100k MiniLM vectors on 2 cores) below `exact_below` points and IVF above, where
recall, and so agreement with exact clustering, depends on `nprobe`.

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

from typing import Any, Literal

import numpy as np

Method = Literal["butina", "components", "leader"]


def _index(x: np.ndarray, exact_below: int, nprobe: int, seed: int) -> Any:
    import faiss

    n, d = x.shape
    index: Any
    if n < exact_below:
        index = faiss.IndexFlatIP(d)
    else:
        nlist = int(4 * np.sqrt(n))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(seed)
        index.cp.seed = seed
        index.train(x[rng.choice(n, size=min(n, nlist * 40), replace=False)])
        index.nprobe = nprobe
    index.add(x)
    return index


def knn(
    x: np.ndarray, k: int, exact_below: int = 200_000, nprobe: int = 64, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(similarities, indices) of each row's k nearest rows by inner product."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    k = min(k, len(x))
    index = _index(x, exact_below, nprobe, seed)
    sims = np.empty((len(x), k), dtype=np.float32)
    idx = np.empty((len(x), k), dtype=np.int64)
    step = 8192
    for s in range(0, len(x), step):
        sims[s : s + step], idx[s : s + step] = index.search(x[s : s + step], k)  # type: ignore[attr-defined]
    return sims, idx


def threshold_neighbours(
    x: np.ndarray,
    threshold: float,
    k: int = 64,
    exact_below: int = 200_000,
    nprobe: int = 64,
    max_degree: int = 4096,
    seed: int = 0,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Every row's neighbours with similarity >= threshold (self included) and their summed
    similarity. A k-NN search finds them for most rows; rows whose k-th neighbour is still
    above the threshold (hubs) get a range search, capped at `max_degree` neighbours, so
    memory is O(n k + hubs x max_degree), never O(n^2)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    n = len(x)
    k = min(k, n)
    index = _index(x, exact_below, nprobe, seed)
    neighbours: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * n
    weight = np.zeros(n, dtype=np.float64)
    hubs: list[int] = []
    step = 8192
    for s in range(0, n, step):
        sims, idx = index.search(x[s : s + step], k)  # type: ignore[attr-defined]
        mask = (sims >= threshold) & (idx >= 0)
        for r in range(len(sims)):
            if k < n and mask[r, -1]:
                hubs.append(s + r)
                continue
            neighbours[s + r] = idx[r][mask[r]]
            weight[s + r] = float(sims[r][mask[r]].sum())
    for s in range(0, len(hubs), 1024):
        rows = hubs[s : s + 1024]
        lims, dist, ids = index.range_search(x[rows], threshold)  # type: ignore[attr-defined]
        for j, i in enumerate(rows):
            d, ix = dist[lims[j] : lims[j + 1]], ids[lims[j] : lims[j + 1]]
            if len(ix) > max_degree:
                top = np.argsort(-d, kind="stable")[:max_degree]
                d, ix = d[top], ix[top]
            neighbours[i] = ix.astype(np.int64)
            weight[i] = float(d.sum())
    return neighbours, weight


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


def cluster(
    x: np.ndarray,
    threshold: float = 0.5,
    method: Method = "butina",
    k: int = 64,
    exact_below: int = 200_000,
    nprobe: int = 64,
) -> np.ndarray:
    """Cluster labels (0..m-1) for normalised rows of `x`."""
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if method == "leader":
        return leader_cluster(x, threshold, k=max(k, 256), exact_below=exact_below)
    neighbours, weight = threshold_neighbours(x, threshold, k, exact_below=exact_below, nprobe=nprobe)
    if method == "butina":
        return _butina(n, neighbours, weight)
    rows = np.repeat(np.arange(n), [len(nb) for nb in neighbours])
    return _components(n, rows, np.concatenate(neighbours))


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


def leader_cluster(x: np.ndarray, threshold: float = 0.5, k: int = 256, exact_below: int = 200_000) -> np.ndarray:
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


def exact_threshold_clustering(
    x: np.ndarray, threshold: float = 0.5, method: Method = "butina", block: int = 2048
) -> np.ndarray:
    """Reference: the same rule over the full all-pairs threshold graph (blocked, so memory
    stays O(block * n) plus the edges; time O(n^2)). For benchmarks and tests."""
    n = len(x)
    rows, cols, ws = [], [], []
    for s in range(0, n, block):
        sim = x[s : s + block] @ x.T
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
    neighbours = [c[bounds[i] : bounds[i + 1]] for i in range(n)]
    weight = np.bincount(r, weights=w, minlength=n)
    return _butina(n, neighbours, weight)
