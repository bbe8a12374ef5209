"""A/B of simulators: per-conversation metric differences on the same seeds, with a paired
bootstrap interval (seeded, so the same runs give the same page)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .collect import Sim

RESAMPLES = 2000


@dataclass
class Difference:
    metric: str
    n: int  # pairs (paired) or the smaller side (unpaired)
    paired: bool
    mean_a: float
    mean_b: float
    diff: float  # B - A
    lo: float | None
    hi: float | None


def _value(rec: dict[str, Any], metric: str) -> float | None:
    v = rec.get(metric)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v)


def pair_key(conv: dict[str, Any]) -> tuple[str, int] | None:
    """Conversations of two simulators pair on (seed id, sample index)."""
    meta = conv.get("meta") or {}
    sid = meta.get("seed_id")
    return (str(sid), int(meta.get("sample_index") or 0)) if sid else None


def _by_key(sim: Sim) -> dict[tuple[str, int], dict[str, Any]]:
    out = {}
    for c in sim.conversations:
        k = pair_key(c)
        if k is not None and k not in out:
            out[k] = c
    return out


def shared_seeds(a: Sim, b: Sim) -> list[tuple[str, int]]:
    kb = _by_key(b)
    return [k for k in _by_key(a) if k in kb]


def bootstrap_ci(x: np.ndarray, seed: int = 0, resamples: int = RESAMPLES) -> tuple[float | None, float | None]:
    """95% percentile interval of the mean of `x`."""
    if len(x) < 2:
        return None, None
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(resamples, len(x)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def differences(a: Sim, b: Sim, names: list[str], seed: int = 0) -> list[Difference]:
    """B - A for each metric: paired on shared seeds when there are at least two, else the
    difference of independent means (each side resampled on its own)."""
    ka, kb = _by_key(a), _by_key(b)
    shared = [k for k in ka if k in kb]
    out = []
    for name in names:
        if len(shared) >= 2:
            pairs = [
                (va, vb)
                for k in shared
                if (va := _value(a.scores.get(str(ka[k]["id"]), {}), name)) is not None
                and (vb := _value(b.scores.get(str(kb[k]["id"]), {}), name)) is not None
            ]
            if len(pairs) >= 2:
                arr = np.asarray(pairs)
                lo, hi = bootstrap_ci(arr[:, 1] - arr[:, 0], seed)
                out.append(Difference(name, len(arr), True, arr[:, 0].mean(), arr[:, 1].mean(),
                                      float((arr[:, 1] - arr[:, 0]).mean()), lo, hi))  # fmt: skip
                continue
        d = _unpaired(a, b, name, seed)
        if d is not None:
            out.append(d)
    return out


def _unpaired(a: Sim, b: Sim, name: str, seed: int) -> Difference | None:
    xa = np.asarray([v for r in a.scores.values() if (v := _value(r, name)) is not None])
    xb = np.asarray([v for r in b.scores.values() if (v := _value(r, name)) is not None])
    if len(xa) < 2 or len(xb) < 2:
        return None
    rng = np.random.default_rng(seed)
    ma = xa[rng.integers(0, len(xa), size=(RESAMPLES, len(xa)))].mean(axis=1)
    mb = xb[rng.integers(0, len(xb), size=(RESAMPLES, len(xb)))].mean(axis=1)
    lo, hi = np.percentile(mb - ma, [2.5, 97.5])
    return Difference(name, min(len(xa), len(xb)), False, float(xa.mean()), float(xb.mean()),
                      float(xb.mean() - xa.mean()), float(lo), float(hi))  # fmt: skip
