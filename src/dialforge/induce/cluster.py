"""Threshold clustering of normalised embeddings, in memory linear in n.

- `components` (default, order-independent): connected components of the graph that links
  two strategies when their cosine similarity is >= threshold, with edges found by a
  k-nearest-neighbour search (FAISS; exact below `exact_below` points, IVF above), so memory
  is O(n k) instead of O(n^2). With k large enough it equals exact all-pairs threshold
  clustering; `benchmarks/induce_scale.py` measures the agreement (adjusted Rand index).
- `leader` (the published rule): in input order, each unassigned point becomes a leader and
  takes every point above the threshold; a point already taken moves to a later leader only
  if it is more similar to it. Order-dependent, kept for fidelity.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Method = Literal["components", "leader"]


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


def cluster(x: np.ndarray, threshold: float = 0.5, method: Method = "components", k: int = 32,
            exact_below: int = 20_000) -> np.ndarray:
    """Cluster labels (0..m-1) for normalised rows of `x`."""
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if method == "leader":
        return leader_cluster(x, threshold, k=max(k, 256), exact_below=exact_below)
    sims, idx = knn(x, k, exact_below=exact_below)
    mask = (sims >= threshold) & (idx >= 0)
    rows = np.repeat(np.arange(n), idx.shape[1])[mask.ravel()]
    return _components(n, rows, idx.ravel()[mask.ravel()])


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


def exact_threshold_components(x: np.ndarray, threshold: float = 0.5, block: int = 2048) -> np.ndarray:
    """Reference: connected components of the full all-pairs threshold graph (blocked, so
    memory stays O(block * n); time O(n^2)). For benchmarks and tests."""
    n = len(x)
    rows, cols = [], []
    for s in range(0, n, block):
        sim = x[s:s + block] @ x.T
        r, c = np.nonzero(sim >= threshold)
        rows.append(r + s)
        cols.append(c)
    return _components(n, np.concatenate(rows), np.concatenate(cols))
