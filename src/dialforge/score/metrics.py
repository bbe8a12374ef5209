"""Diversity and depth metrics. Deterministic: sampling uses fixed seeds."""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence

import numpy as np

_WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Unique n-grams / all n-grams over the texts (0 when there are none)."""
    return distinct_words([words(t) for t in texts], n)


def distinct_words(tokenised: Sequence[Sequence[str]], n: int) -> float:
    """`distinct_n` over texts already split into words (score tokenises each text once)."""
    grams: set[object] = set()
    total = 0
    for w in tokenised:
        if len(w) < n:
            continue
        total += len(w) - n + 1
        grams.update(w if n == 1 else zip(*(w[k:] for k in range(n)), strict=False))
    return len(grams) / total if total else 0.0


def _mtld_pass(tokens: Iterable[Hashable], n: int, threshold: float) -> float:
    """One MTLD pass over `n` tokens in the order given (any iterable: `score` streams them
    from a file, forwards and then backwards)."""
    factors = 0.0
    types: set[Hashable] = set()
    count = 0
    for tok in tokens:
        count += 1
        if tok in types:  # only a repeat can lower the type-token ratio
            if len(types) / count <= threshold:
                factors += 1
                types, count = set(), 0
        else:
            types.add(tok)
    if count > 0:
        factors += (1 - len(types) / count) / (1 - threshold)
    return n / factors if factors > 0 else float(n)


def mtld(tokens: Sequence[Hashable], threshold: float = 0.72) -> float:
    """Measure of textual lexical diversity (McCarthy & Jarvis 2010): mean of the forward and
    backward passes. A text that never drops to the threshold scores its length."""
    if not tokens:
        return 0.0
    return mtld_passes(tokens, reversed(tokens), len(tokens), threshold)


def mtld_passes(forward: Iterable[Hashable], backward: Iterable[Hashable], n: int, threshold: float = 0.72) -> float:
    """`mtld` of `n` tokens given as two iterables: in order, and in reverse order."""
    if not n:
        return 0.0
    return (_mtld_pass(forward, n, threshold) + _mtld_pass(backward, n, threshold)) / 2


class Reservoir:
    """A seeded uniform sample of `k` items from a stream of unknown length, in constant
    memory (Algorithm R); `sample` is this over a whole sequence, so a streamed sample
    equals the one taken from the same items in a list."""

    def __init__(self, k: int, seed: int = 0) -> None:
        self.k = k
        self.items: list[str] = []
        self.seen = 0
        self._rng = random.Random(seed)

    def add(self, item: str) -> None:
        if self.seen < self.k:
            self.items.append(item)
        else:
            j = self._rng.randrange(self.seen + 1)
            if j < self.k:
                self.items[j] = item
        self.seen += 1


def sample(items: Iterable[str], k: int, seed: int = 0) -> list[str]:
    r = Reservoir(k, seed)
    for x in items:
        r.add(x)
    return r.items


_Top = dict[tuple[str, ...], tuple[int, int, int]]


def self_bleu(texts: Sequence[str], sample_size: int = 100, seed: int = 0) -> float:
    """Mean BLEU-4 of each sampled text against all the other sampled texts (higher = less
    diverse), with nltk's smoothing method 1 (short texts do not score 0). Equal to nltk's
    `sentence_bleu` of each text against the others (tested), but each text's n-grams are
    counted once, not once per hypothesis it serves as a reference for."""
    s = [w for w in (words(t) for t in sample(texts, sample_size, seed)) if w]
    if len(s) < 2:
        return 0.0
    grams = [[Counter(zip(*(w[k:] for k in range(n)), strict=False)) for n in range(1, 5)] for w in s]
    top = [_top2(g[n] for g in grams) for n in range(4)]
    lengths = [len(w) for w in s]
    scores = []
    for i, w in enumerate(s):
        others = lengths[:i] + lengths[i + 1 :]
        ref = min(others, key=lambda r: (abs(r - len(w)), r))
        precisions = [_clipped(grams[i][n], top[n], i) for n in range(4)]
        scores.append(_bleu(precisions, ref, len(w)))
    return float(np.mean(scores))


def _top2(counters: Iterable[Counter[tuple[str, ...]]]) -> _Top:
    """Per n-gram: (highest count, the text that has it, second highest count)."""
    top: _Top = {}
    for i, c in enumerate(counters):
        for g, k in c.items():
            best, who, second = top.get(g, (0, -1, 0))
            if k > best:
                top[g] = (k, i, best)
            elif k > second:
                top[g] = (best, who, k)
    return top


def _clipped(
    counts: Counter[tuple[str, ...]], top: dict[tuple[str, ...], tuple[int, int, int]], i: int
) -> tuple[int, int]:
    """BLEU's modified precision (numerator, denominator) of text i against all the others."""
    num = 0
    for g, k in counts.items():
        best, who, second = top[g]
        num += min(k, second if who == i else best)
    return num, max(1, sum(counts.values()))


def _bleu(precisions: list[tuple[int, int]], ref_len: int, hyp_len: int) -> float:
    """nltk's corpus_bleu for one hypothesis, uniform weights, smoothing method 1."""
    if precisions[0][0] == 0:
        return 0.0
    bp = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    p = [(0.1 / d) if n == 0 else n / d for n, d in precisions]
    return bp * math.exp(math.fsum(0.25 * math.log(x) for x in p if x > 0))


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
_ANAPHORA = frozenset("this that these those it its they them above previous earlier".split())  # _REFER's words
_STOP = frozenset(
    "about above after again against because before being below between could doing during "
    "further having other should their there these those through under until while which would "
    "where what when your yours with from into only same some such than that then this very".split()
)


def is_follow_up(question: str, previous_answer: str) -> bool:
    """A user turn depends on the previous answer if it refers back to it (anaphora such as
    "that", "your example", "the second step") or reuses at least two of its content words."""
    return follows_up(question, words(question), previous_answer)


def follows_up(question: str, question_words: Sequence[str], previous_answer: str) -> bool:
    """`is_follow_up` with the question already split into words. The answer is tokenised
    only when two content words occur in it as substrings (a necessary condition)."""
    if not _ANAPHORA.isdisjoint(question_words) or _REFER.search(question):
        return True
    content = {w for w in question_words if len(w) >= 5 and w not in _STOP}
    if len(content) < 2:
        return False
    low = previous_answer.lower()
    present = [w for w in content if w in low]
    return len(present) >= 2 and len(set(present).intersection(_WORD.findall(low))) >= 2


_WORD_BYTES = bytes(
    ord("a") if chr(b).isascii() and (chr(b).isalnum() or chr(b) == "_") else ord(" ") for b in range(256)
)


def count_words(text: str) -> int:
    """`len(words(text))` without building the words: ASCII text (where \\w is [A-Za-z0-9_])
    is mapped to word and space bytes and its word starts counted in C; other text goes
    through the regex."""
    if text.isascii():  # a word starts wherever a space byte is followed by a word byte
        b = text.encode().translate(_WORD_BYTES)
        return b.count(b" a") + b.startswith(b"a")
    return len(_WORD.findall(text))


def entropy_bits(counts: Counter[str]) -> float:
    total = sum(counts.values())
    h = -sum(c / total * math.log2(c / total) for c in counts.values() if c) if total else 0.0
    return h + 0.0  # one kind only: 0.0, not -0.0
