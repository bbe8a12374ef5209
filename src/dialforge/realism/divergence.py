"""MAUVE between two sets of text embeddings (Pillutla et al., NeurIPS 2021, arXiv:2102.01454).

The definition followed (the reference implementation's defaults, on our own embeddings):
1. stack both sets, L2-normalise, PCA keeping 90% of the variance;
2. k-means on the union with k = max(2, round(min(n_p, n_q) / 10)) clusters;
3. P and Q are the two sides' cluster histograms;
4. for 25 mixture weights w in [1e-6, 1 - 1e-6], R_w = w P + (1 - w) Q and the divergence
   curve point is (exp(-c KL(Q || R_w)), exp(-c KL(P || R_w))), with c = 5, plus the
   extreme points (0, 1) and (1, 0);
5. MAUVE is the area under that curve (averaged over both axis orders, as the reference does).
1 means the histograms match; it falls towards 0 as the sets occupy different clusters.
No bootstrap interval: resampling adds histogram noise, so a resampled MAUVE is biased low
and its percentile interval can exclude the estimate. Instead `null05` is the 5th percentile
of MAUVE after dealing whole conversation families between the sides (clusters fixed; see
`null.py`): the score one distribution gets against itself at these sample sizes (small
samples never reach 1). Shuffling single turns made that level too high for grouped data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.decomposition import PCA
from sklearn.metrics import auc as area_under_curve
from sklearn.preprocessing import normalize

from .null import family_masks

SCALING = 5.0
EXPLAINED_VARIANCE = 0.9
WEIGHTS = np.linspace(1e-6, 1 - 1e-6, 25)


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    if np.any((p > 0) & (q == 0)):
        return float("inf")
    m = (p > 0) & (q > 0)
    return float(np.sum(p[m] * np.log(p[m] / q[m])))


def mauve_from_histograms(p: np.ndarray, q: np.ndarray, scaling: float = SCALING) -> float:
    """Area under the divergence curve of two histograms over the same clusters."""
    curve = [[0.0, float("inf")]]
    for w in WEIGHTS:
        r = w * p + (1 - w) * q
        curve.append([_kl(q, r), _kl(p, r)])
    curve.append([float("inf"), 0.0])
    pts = np.exp(-scaling * np.asarray(curve))
    x, y = pts[:, 0], pts[:, 1]
    # the frontier falls as x grows: break ties by the other coordinate, descending, so that
    # identical histograms (every inner point at (1, 1)) enclose the whole square
    i, j = np.lexsort((-y, x)), np.lexsort((-x, y))
    return float(0.5 * (area_under_curve(x[i], y[i]) + area_under_curve(y[j], x[j])))


def quantize(p_feats: np.ndarray, q_feats: np.ndarray, clusters: int, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Cluster labels of each side's points on the joint PCA-reduced k-means (and the PCA dims)."""
    import faiss

    data = normalize(np.vstack([q_feats, p_feats]).astype(np.float64), norm="l2", axis=1)
    pca = PCA(n_components=None, random_state=seed + 1)
    pca.fit(data)
    dims = int(np.argmax(np.cumsum(pca.explained_variance_ratio_) >= EXPLAINED_VARIANCE)) + 1
    reduced = np.ascontiguousarray(pca.transform(data)[:, :dims], dtype=np.float32)
    km = faiss.Kmeans(dims, clusters, niter=100, nredo=1, seed=seed + 2, verbose=False, min_points_per_centroid=1)
    km.train(reduced)
    _, labels = km.index.search(reduced, 1)
    labels = labels.reshape(-1)
    return labels[len(q_feats) :], labels[: len(q_feats)], dims


def _hist(labels: np.ndarray, k: int) -> np.ndarray:
    h = np.bincount(labels, minlength=k).astype(np.float64)
    return h / h.sum()


def mauve(
    p_feats: np.ndarray,
    q_feats: np.ndarray,
    *,
    seed: int = 0,
    clusters: int | None = None,
    n_boot: int = 0,
    p_groups: Sequence[str] | None = None,
    q_groups: Sequence[str] | None = None,
) -> tuple[float, float | None, int, int]:
    """(MAUVE, same-distribution 5th percentile or None, clusters, PCA dims) of two embedding
    sets. With each point's conversation family (`p_groups`, `q_groups`) the null deals whole
    families to the sides (`null.family_masks`); without, every point is its own family."""
    k = clusters or max(2, int(round(min(len(p_feats), len(q_feats)) / 10)))
    k = min(k, len(p_feats) + len(q_feats))
    p_lab, q_lab, dims = quantize(p_feats, q_feats, k, seed)
    value = mauve_from_histograms(_hist(p_lab, k), _hist(q_lab, k))
    null = None
    if n_boot > 0:
        pg = list(p_groups) if p_groups is not None else [f"p{i}" for i in range(len(p_lab))]
        qg = list(q_groups) if q_groups is not None else [f"q{i}" for i in range(len(q_lab))]
        pooled = np.concatenate([p_lab, q_lab])
        vals = [
            mauve_from_histograms(_hist(pooled[m], k), _hist(pooled[~m], k)) for m in family_masks(pg, qg, n_boot, seed)
        ]
        null = round(float(np.percentile(vals, 5)), 4)
    return value, null, k, dims
