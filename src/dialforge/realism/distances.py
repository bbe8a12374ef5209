"""Distribution distances between SIM and REAL for simple per-turn and per-conversation counts.

Counts (words per user turn, user turns per conversation) get the two-sample
Kolmogorov-Smirnov statistic (largest gap between the two empirical CDFs, 0..1, scale-free)
and the Wasserstein-1 distance (in the count's own unit), with both medians. Yes/no shares
(question rate, follow-up rate) get both shares and their absolute difference, which is the
KS statistic of two Bernoulli samples.

Intervals: a distance is never negative, so a percentile bootstrap of it is biased upwards
near 0 and can exclude its own estimate. The card gives instead (a) the 95% bootstrap
interval of the signed difference (SIM median - REAL median; SIM share - REAL share), and
(b) `null95`: the 95th percentile of the distance when the two sides are shuffled together
(a permutation test), i.e. the distance two samples of these sizes from one distribution
would reach by chance. Whole conversation families are dealt (`null.py`): turns of one
conversation are alike, and a turn-by-turn shuffle put real data outside its own chance.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.stats import ks_2samp, wasserstein_distance

from .card import Distance
from .null import family_masks


def _ks(a: np.ndarray, b: np.ndarray) -> float:
    """KS statistic by merged-CDF evaluation (same value as scipy's, cheap inside a bootstrap)."""
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / len(a)
    cdf_b = np.searchsorted(b, grid, side="right") / len(b)
    return float(np.max(np.abs(cdf_a - cdf_b)))


Stat = Callable[[np.ndarray, np.ndarray], float]


def _boot(a: np.ndarray, b: np.ndarray, stat: Stat, n_boot: int, seed: int) -> tuple[float, float] | None:
    """Percentile 95% interval of stat(a, b), resampling each side."""
    if n_boot <= 0:
        return None
    rng = np.random.default_rng(seed)
    vals = [stat(rng.choice(a, len(a)), rng.choice(b, len(b))) for _ in range(n_boot)]
    lo, hi = np.percentile(vals, [2.5, 97.5])
    return round(float(lo), 6), round(float(hi), 6)


Groups = Sequence[str] | None


def _null95(
    a: np.ndarray, b: np.ndarray, stat: Stat, n_perm: int, seed: int, groups: tuple[Groups, Groups] = (None, None)
) -> float | None:
    """95th percentile of stat when the pooled values are dealt back to two sides at random,
    whole conversation families at a time when the values' families are given."""
    if n_perm <= 0:
        return None
    ga = list(groups[0]) if groups[0] is not None else [f"a{i}" for i in range(len(a))]
    gb = list(groups[1]) if groups[1] is not None else [f"b{i}" for i in range(len(b))]
    pooled = np.concatenate([a, b])
    vals = [stat(pooled[m], pooled[~m]) for m in family_masks(ga, gb, n_perm, seed + 1)]
    return round(float(np.percentile(vals, 95, method="higher")), 6)  # discrete stats: never below the 95% level


def _median_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.median(a) - np.median(b))


def _mean_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(a.mean() - b.mean())


def _abs_mean_diff(a: np.ndarray, b: np.ndarray) -> float:
    return abs(_mean_diff(a, b))


def continuous_distance(
    sim: Sequence[float],
    real: Sequence[float],
    *,
    n_boot: int = 0,
    seed: int = 0,
    groups: tuple[Groups, Groups] = (None, None),
) -> Distance:
    a, b = np.asarray(sim, dtype=np.float64), np.asarray(real, dtype=np.float64)
    if len(a) == 0 or len(b) == 0:
        return Distance(kind="continuous", ks=None, n_sim=len(a), n_real=len(b))
    res = ks_2samp(a, b)
    return Distance(
        kind="continuous",
        ks=round(float(res.statistic), 6),
        ks_pvalue=float(res.pvalue),
        null95=_null95(a, b, _ks, n_boot, seed, groups),
        diff_ci95=_boot(a, b, _median_diff, n_boot, seed),
        wasserstein=round(float(wasserstein_distance(a, b)), 6),
        sim_median=float(np.median(a)),
        real_median=float(np.median(b)),
        sim_mean=float(a.mean()),
        real_mean=float(b.mean()),
        n_sim=len(a),
        n_real=len(b),
    )


def share_distance(
    sim: Sequence[bool],
    real: Sequence[bool],
    *,
    n_boot: int = 0,
    seed: int = 0,
    groups: tuple[Groups, Groups] = (None, None),
) -> Distance:
    a, b = np.asarray(sim, dtype=np.float64), np.asarray(real, dtype=np.float64)
    if len(a) == 0 or len(b) == 0:
        return Distance(kind="share", ks=None, n_sim=len(a), n_real=len(b))
    return Distance(
        kind="share",
        ks=round(_abs_mean_diff(a, b), 6),
        null95=_null95(a, b, _abs_mean_diff, n_boot, seed, groups),
        diff_ci95=_boot(a, b, _mean_diff, n_boot, seed),
        sim_mean=float(a.mean()),
        real_mean=float(b.mean()),
        n_sim=len(a),
        n_real=len(b),
    )
