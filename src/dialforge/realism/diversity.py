"""First-turn diversity: distinct-2 and the Vendi score (Friedman & Dieng, TMLR 2023).

Vendi = exp(Shannon entropy of the eigenvalues of K / n), K the cosine-similarity kernel of
n normalised embeddings: the effective number of distinct items. With K = X X^T the nonzero
eigenvalues of K / n are those of X^T X / n (d x d), so it costs O(n d^2), not O(n^3), and
10k openings take milliseconds.
"""

from __future__ import annotations

import numpy as np


def vendi(vectors: np.ndarray) -> float:
    """Vendi score of L2-normalised row vectors (1 for identical rows, n for orthogonal ones)."""
    n = len(vectors)
    if n < 2:
        return float(n)
    x = vectors.astype(np.float64)
    small = x.T @ x if n > x.shape[1] else x @ x.T
    eig = np.linalg.eigvalsh(small / n)
    eig = eig[eig > 1e-12]
    eig = eig / eig.sum()  # the trace is 1 for unit rows; renormalise rounding
    return float(np.exp(-(eig * np.log(eig)).sum()))
