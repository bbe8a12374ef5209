"""Threshold clustering of normalised embeddings, in memory linear in n.

Neighbours above the cosine threshold come, below `exact_below` points, from exact blocked
matrix products over the upper triangle (O(n^2 d / 2) time, memory one block plus the
edges); above it from a FAISS IVF k-NN search with a range search for the few hubs whose
k-th neighbour is still above the threshold (memory O(n k)), where recall, and so agreement
with exact clustering, depends on `nprobe`. See docs/benchmarks.md for why not FAISS's
flat index here: faiss-cpu's bundled OpenBLAS misdetects this CPU.

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
Kernel = Literal["auto", "blocked", "faiss"]


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


def blocked_threshold_edges(
    x: np.ndarray, threshold: float, row_block: int = 2048, col_block: int = 8192
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs (i, j) with x_i . x_j >= threshold, both directions and the diagonal, by
    blocked matrix products over the upper triangle only (half the work of a full search;
    memory: one row_block x col_block product plus the edges). Exact: on this 2-core AVX2
    machine numpy's BLAS beats faiss-cpu's bundled OpenBLAS, which misdetects the CPU."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    n = len(x)
    rows, cols, ws = [], [], []
    for s in range(0, n, row_block):
        a = x[s : s + row_block]
        for c in range(s, n, col_block):
            sim = a @ x[c : c + col_block].T
            r, k = np.nonzero(sim >= threshold)
            r, k = r + s, k + c
            keep = k >= r  # the diagonal block is computed whole: keep its upper half
            r, k, w = r[keep], k[keep], sim[r[keep] - s, k[keep] - c]
            off = r != k
            rows += [r, k[off]]
            cols += [k, r[off]]
            ws += [w, w[off]]
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(ws)


def _edges_to_lists(
    n: int, r: np.ndarray, c: np.ndarray, w: np.ndarray, max_degree: int
) -> tuple[list[np.ndarray], np.ndarray]:
    order = np.lexsort((-w, r))  # by row, most similar first
    r, c, w = r[order], c[order], w[order]
    bounds = np.searchsorted(r, np.arange(n + 1))
    neighbours = [c[bounds[i] : min(bounds[i + 1], bounds[i] + max_degree)] for i in range(n)]
    weight = np.zeros(n, dtype=np.float64)
    for i in np.nonzero(np.diff(bounds) > max_degree)[0]:
        weight[i] = float(w[bounds[i] : bounds[i] + max_degree].sum())
    small = np.diff(bounds) <= max_degree
    weight[small] = np.bincount(r, weights=w, minlength=n)[small]
    return neighbours, weight


def threshold_neighbours(
    x: np.ndarray,
    threshold: float,
    k: int = 64,
    exact_below: int = 200_000,
    nprobe: int = 64,
    max_degree: int = 4096,
    seed: int = 0,
    kernel: Kernel = "auto",
) -> tuple[list[np.ndarray], np.ndarray]:
    """Every row's neighbours with similarity >= threshold (self included, most similar
    first, at most `max_degree`) and their summed similarity.

    Below `exact_below` rows (kernel "auto" or "blocked") the search is exact, by blocked
    matrix products. Above it (or kernel "faiss") a FAISS k-NN search finds most rows'
    neighbours and rows whose k-th neighbour is still above the threshold (hubs) get a range
    search, so memory is O(n k + hubs x max_degree), never O(n^2)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    n = len(x)
    if kernel == "blocked" or (kernel == "auto" and n < exact_below):
        return _edges_to_lists(n, *blocked_threshold_edges(x, threshold), max_degree)
    k = min(k, n)
    index = _index(x, exact_below if kernel == "auto" else n + 1, nprobe, seed)
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
    kernel: Kernel = "auto",
) -> np.ndarray:
    """Cluster labels (0..m-1) for normalised rows of `x`."""
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if method == "leader":
        return leader_cluster(x, threshold, k=max(k, 256), exact_below=exact_below)
    neighbours, weight = threshold_neighbours(x, threshold, k, exact_below=exact_below, nprobe=nprobe, kernel=kernel)
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
