"""Can a classifier tell simulated user turns from real ones? (and: user turns from assistant ones)

Logistic regression on sentence embeddings (unit vectors, left as they are) plus
standardised style features, scored by
grouped, stratified k-fold cross-validation: turns of one conversation family never sit on
both sides of a fold, otherwise a classifier recognises the conversation's topic instead of
its author and real-vs-real splits look separable. The AUC of the out-of-fold scores is the
figure; a bootstrap over those scores gives its 95% interval (it holds the fitted folds
fixed, so it is a lower bound on the full uncertainty).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .card import Telltale
from .features import STYLE_FEATURES
from .null import family_masks


def _model(seed: int, n_features: int) -> object:
    """The last len(STYLE_FEATURES) columns are style features (standardised); any columns
    before them are embedding dimensions, kept raw: standardising 384 small, mostly noise
    dimensions to unit variance let them drown the style signal (swapped-roles AUC 0.88 vs
    0.92 on OASST)."""
    n_emb = n_features - len(STYLE_FEATURES)
    cols = ColumnTransformer(
        [("embedding", "passthrough", list(range(n_emb))), ("style", StandardScaler(), list(range(n_emb, n_features)))]
    )
    return make_pipeline(cols, LogisticRegression(C=1.0, max_iter=2000, random_state=seed))


def usable_folds(groups: np.ndarray, y: np.ndarray, folds: int) -> int:
    """As many folds as requested, but no more than the families of the smaller class."""
    per_class = [len(set(groups[y == c].tolist())) for c in (0, 1)]
    return max(0, min(folds, *per_class))


def out_of_fold_scores(X: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """P(class 1) for every row, each from a model that never saw the row's family."""
    cv = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = np.zeros(len(y), dtype=np.float64)
    for train, test in cv.split(X, y, groups):
        if len(set(y[train].tolist())) < 2:  # a fold without one class: score it neutral
            scores[test] = 0.5
            continue
        model = _model(seed, X.shape[1])
        model.fit(X[train], y[train])  # type: ignore[attr-defined]
        scores[test] = model.predict_proba(X[test])[:, 1]  # type: ignore[attr-defined]
    return scores


def bootstrap_auc(y: np.ndarray, scores: np.ndarray, n_boot: int, seed: int) -> tuple[float, float] | None:
    """Percentile 95% interval of the AUC, resampling each class separately."""
    if n_boot <= 0:
        return None
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    aucs = []
    for _ in range(n_boot):
        idx = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        aucs.append(roc_auc_score(y[idx], scores[idx]))
    lo, hi = np.percentile(aucs, [2.5, 97.5])
    return float(lo), float(hi)


def chance_auc(
    scores: np.ndarray, groups_sim: Sequence[str], groups_real: Sequence[str], n_perm: int, seed: int
) -> tuple[float, float] | None:
    """2.5th-97.5th percentiles of the AUC of fixed out-of-fold scores (SIM's rows first)
    when whole families are dealt to the labels at random (`null.family_masks`)."""
    if n_perm <= 0:
        return None
    aucs = [
        roc_auc_score(m.astype(int), scores)
        for m in family_masks(groups_sim, groups_real, n_perm, seed + 3)
        if 0 < m.sum() < len(m)
    ]
    lo, hi = np.percentile(aucs, [2.5, 97.5])
    return round(float(lo), 4), round(float(hi), 4)


def telltales(style: np.ndarray, y: np.ndarray, seed: int, top: int = 5) -> list[Telltale]:
    """The style features with the largest weights in a style-only model fitted on all rows."""
    model = _model(seed, style.shape[1])
    model.fit(style, y)  # type: ignore[attr-defined]
    coef = model[-1].coef_[0]  # type: ignore[index]
    order = np.argsort(-np.abs(coef))[:top]
    return [
        Telltale(
            feature=STYLE_FEATURES[i],
            weight=round(float(coef[i]), 4),
            sim_mean=round(float(style[y == 1, i].mean()), 4),
            real_mean=round(float(style[y == 0, i].mean()), 4),
        )
        for i in order
        if abs(coef[i]) > 1e-6
    ]


def cross_validated_auc(
    X: np.ndarray, y: np.ndarray, groups: Sequence[str], folds: int, seed: int
) -> tuple[float | None, np.ndarray | None, int]:
    """(AUC, out-of-fold scores, folds used); AUC None when there are too few families."""
    g = np.asarray(groups)
    k = usable_folds(g, y, folds)
    if k < 2:
        return None, None, k
    scores = out_of_fold_scores(X, y, g, k, seed)
    return float(roc_auc_score(y, scores)), scores, k


def fit_predict(X_train: np.ndarray, y_train: np.ndarray, X: np.ndarray, seed: int) -> np.ndarray:
    """P(class 1) for X from a model fitted on all of (X_train, y_train)."""
    model = _model(seed, X_train.shape[1])
    model.fit(X_train, y_train)  # type: ignore[attr-defined]
    return np.asarray(model.predict_proba(X)[:, 1])  # type: ignore[attr-defined]
