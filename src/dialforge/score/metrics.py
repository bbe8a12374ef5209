"""Diversity and depth metrics. Deterministic: sampling uses fixed seeds."""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Unique n-grams / all n-grams over the texts (0 when there are none)."""
    return distinct_words([words(t) for t in texts], n)


def distinct_words(tokenised: Sequence[Sequence[str]], n: int) -> float:
    """`distinct_n` over texts already split into words (score tokenises each text once)."""
    grams: list[tuple[str, ...]] = []
    for w in tokenised:
        grams.extend(tuple(w[i : i + n]) for i in range(len(w) - n + 1))
    return len(set(grams)) / len(grams) if grams else 0.0


def _mtld_pass(tokens: Sequence[str], threshold: float) -> float:
    factors = 0.0
    types: set[str] = set()
    count = 0
    ttr = 1.0
    for tok in tokens:
        count += 1
        types.add(tok)
        ttr = len(types) / count
        if ttr <= threshold:
            factors += 1
            types, count, ttr = set(), 0, 1.0
    if count > 0:
        factors += (1 - ttr) / (1 - threshold)
    return len(tokens) / factors if factors > 0 else float(len(tokens))


def mtld(tokens: Sequence[str], threshold: float = 0.72) -> float:
    """Measure of textual lexical diversity (McCarthy & Jarvis 2010): mean of the forward and
    backward passes. A text that never drops to the threshold scores its length."""
    if not tokens:
        return 0.0
    return (_mtld_pass(tokens, threshold) + _mtld_pass(list(reversed(tokens)), threshold)) / 2


def sample(items: Sequence[str], k: int, seed: int = 0) -> list[str]:
    items = list(items)
    if len(items) <= k:
        return items
    return random.Random(seed).sample(items, k)


def self_bleu(texts: Sequence[str], sample_size: int = 100, seed: int = 0) -> float:
    """Mean BLEU-4 of each sampled text against all the other sampled texts (higher = less
    diverse). nltk's smoothing method 1 keeps short texts from scoring 0."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    s = [words(t) for t in sample(texts, sample_size, seed)]
    s = [w for w in s if w]
    if len(s) < 2:
        return 0.0
    smooth = SmoothingFunction().method1
    scores = [sentence_bleu(s[:i] + s[i + 1 :], hyp, smoothing_function=smooth) for i, hyp in enumerate(s)]
    return float(np.mean(scores))


def embedding_diversity(vectors: np.ndarray) -> dict[str, float]:
    """Mean off-diagonal cosine similarity (lower = more diverse) and the Vendi score
    (exp of the entropy of the similarity kernel's eigenvalues: the effective number of
    distinct items) of normalised row vectors."""
    n = len(vectors)
    if n < 2:
        return {"mean_cosine": 0.0, "vendi": float(n)}
    k = vectors @ vectors.T
    mean_cos = float((k.sum() - np.trace(k)) / (n * (n - 1)))
    eig = np.linalg.eigvalsh(k / n)
    eig = eig[eig > 1e-12]
    vendi = float(np.exp(-(eig * np.log(eig)).sum()))
    return {"mean_cosine": mean_cos, "vendi": vendi}


_REFER = re.compile(
    r"\b(this|that|these|those|it|its|they|them|above|previous|earlier|you (said|mentioned|suggested|listed|wrote)|"
    r"your (answer|response|reply|list|example|suggestion|explanation|code)|the (first|second|third|last|other) "
    r"(one|point|option|step|idea|example))\b",
    re.I,
)
_STOP = frozenset(
    "about above after again against because before being below between could doing during "
    "further having other should their there these those through under until while which would "
    "where what when your yours with from into only same some such than that then this very".split()
)


def is_follow_up(question: str, previous_answer: str) -> bool:
    """A user turn depends on the previous answer if it refers back to it (anaphora such as
    "that", "your example", "the second step") or reuses at least two of its content words."""
    if _REFER.search(question):
        return True
    content = {w for w in words(question) if len(w) >= 5 and w not in _STOP}
    return len(content & set(words(previous_answer))) >= 2


def entropy_bits(counts: Counter[str]) -> float:
    total = sum(counts.values())
    return -sum(c / total * math.log2(c / total) for c in counts.values() if c) if total else 0.0
