"""`dialforge dedup`: exact, MinHash near-duplicate and embedding deduplication.

The first occurrence is kept; every removal is reported with its reason and the id it
duplicates. Exact and near dedup stream (memory: a digest and a 128-value signature per
kept conversation). MinHash signatures are computed for a whole conversation at once with
numpy (word hashes memoised, 3-word shingles combined arithmetically) with datasketch's
permutations, and LSH candidates are confirmed by their estimated Jaccard, so a bucket
collision alone never removes a conversation. Embedding dedup compares each block of
conversations with all kept ones by blocked matrix products: O(n k d) time, no growing
matrix copies.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from ..conversation import Conversation
from ..io.reader import OnError, atomic_writer, iter_conversations, write_conversations

_MERSENNE = np.uint64((1 << 61) - 1)
_MAX_HASH = np.uint64((1 << 32) - 1)
_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F), np.uint64(0x165667B19E3779F9))
_SPACE = re.compile(r"\s+")


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text.lower()).strip()


def _text(c: Conversation) -> str:
    return "\n".join(m.content for m in c.dialogue())


def exact_key(c: Conversation) -> bytes:
    """Digest of the normalised dialogue text (case and whitespace ignored)."""
    return hashlib.blake2b(_norm(_text(c)).encode(), digest_size=16).digest()


class MinHasher:
    """MinHash signatures of word 3-gram shingle sets, vectorised per document."""

    def __init__(self, num_perm: int = 128, seed: int = 1) -> None:
        from datasketch import MinHash

        a, b = MinHash(num_perm=num_perm, seed=seed, scheme="legacy").permutations
        self.a, self.b = a.astype(np.uint64)[:, None], b.astype(np.uint64)[:, None]
        self.num_perm = num_perm
        self._words: dict[str, int] = {}

    def _word(self, w: str) -> int:
        h = self._words.get(w)
        if h is None:
            if len(self._words) > 2_000_000:  # bounded memo
                self._words.clear()
            h = self._words[w] = zlib.crc32(w.encode())
        return h

    def shingles(self, text: str) -> np.ndarray:
        """32-bit hashes of the word 3-grams of normalised text (one shingle if shorter)."""
        words = _norm(text).split()
        if len(words) < 3:
            return np.array([zlib.crc32(" ".join(words).encode()) | (1 << 32)], dtype=np.uint64)
        w = np.fromiter((self._word(x) for x in words), dtype=np.uint64, count=len(words))
        return ((w[:-2] * _MIX[0] + w[1:-1] * _MIX[1] + w[2:] * _MIX[2]) >> np.uint64(32)).astype(np.uint64)

    def signature(self, text: str) -> np.ndarray:
        hv = self.shingles(text)
        sig = np.full(self.num_perm, _MAX_HASH, dtype=np.uint64)
        with np.errstate(over="ignore"):
            for s in range(0, len(hv), 4096):  # bounded temporaries for very long texts
                phv = ((self.a * hv[s : s + 4096] + self.b) % _MERSENNE) & _MAX_HASH
                np.minimum(sig, phv.min(axis=1), out=sig)
        return sig.astype(np.uint32)


class NearIndex:
    """LSH over MinHash signatures (datasketch's band layout for the threshold), confirmed
    by the estimated Jaccard of the signatures."""

    def __init__(self, threshold: float, num_perm: int = 128) -> None:
        from datasketch.lsh import _optimal_param

        self.threshold = threshold
        self.bands, self.rows = _optimal_param(threshold, num_perm, 0.5, 0.5)
        self._buckets: list[dict[bytes, list[int]]] = [{} for _ in range(self.bands)]
        self._sigs: list[np.ndarray] = []

    def _keys(self, sig: np.ndarray) -> Iterator[tuple[int, bytes]]:
        r = self.rows
        for band in range(self.bands):
            yield band, sig[band * r : (band + 1) * r].tobytes()

    def query(self, sig: np.ndarray) -> tuple[int, float] | None:
        """(index of the first inserted match, estimated Jaccard), or None."""
        cands = sorted({i for band, key in self._keys(sig) for i in self._buckets[band].get(key, ())})
        for i in cands:
            j = float(np.count_nonzero(self._sigs[i] == sig)) / len(sig)
            if j >= self.threshold:
                return i, j
        return None

    def insert(self, sig: np.ndarray) -> int:
        i = len(self._sigs)
        self._sigs.append(sig)
        for band, key in self._keys(sig):
            self._buckets[band].setdefault(key, []).append(i)
        return i


def _stream(
    convs: Iterable[Conversation], near: float | None, num_perm: int, removed: list[dict[str, Any]]
) -> Iterator[Conversation]:
    """Exact then near dedup, one conversation at a time."""
    seen: dict[bytes, str] = {}
    hasher = MinHasher(num_perm) if near is not None else None
    index = NearIndex(near, num_perm) if near is not None else None
    ids: list[str] = []
    for c in convs:
        h = exact_key(c)
        if h in seen:
            removed.append({"id": c.id, "reason": "exact", "duplicate_of": seen[h]})
            continue
        seen[h] = c.id
        if hasher is not None and index is not None:
            sig = hasher.signature(_text(c))
            hit = index.query(sig)
            if hit is not None:
                removed.append(
                    {
                        "id": c.id,
                        "reason": f"near-duplicate (MinHash Jaccard >= {near}, estimated {hit[1]:.2f})",
                        "duplicate_of": ids[hit[0]],
                    }
                )
                continue
            index.insert(sig)
            ids.append(c.id)
        yield c


def embedding_duplicates(vecs: np.ndarray, threshold: float, block: int = 1024, col_block: int = 16384) -> np.ndarray:
    """For each row, the earlier *kept* row it duplicates (cosine >= threshold), else -1.
    Greedy in order, like a scan that compares each row with every survivor, but in blocks:
    a block is compared with the kept rows before it by matrix products (column chunks
    bound memory), then resolved in order inside the block."""
    n = len(vecs)
    vecs = np.ascontiguousarray(vecs, dtype=np.float32)
    dup = np.full(n, -1, dtype=np.int64)
    kept_idx = np.empty(n, dtype=np.int64)
    kept = np.empty_like(vecs)
    nk = 0
    for s in range(0, n, block):
        blk = vecs[s : s + block]
        best = np.full(len(blk), -np.inf, dtype=np.float32)
        arg = np.full(len(blk), -1, dtype=np.int64)
        for c in range(0, nk, col_block):
            sims = blk @ kept[c : min(nk, c + col_block)].T
            j = sims.argmax(axis=1)
            v = sims[np.arange(len(blk)), j]
            better = v > best
            best[better], arg[better] = v[better], j[better] + c
        within = blk @ blk.T
        local: list[int] = []
        for i in range(len(blk)):
            if best[i] >= threshold:
                dup[s + i] = kept_idx[arg[i]]
                continue
            if local:
                row = within[i, local]
                j = int(row.argmax())
                if row[j] >= threshold:
                    dup[s + i] = s + local[j]
                    continue
            local.append(i)
        kept[nk : nk + len(local)] = blk[local]
        kept_idx[nk : nk + len(local)] = np.asarray(local, dtype=np.int64) + s
        nk += len(local)
    return dup


def _embedding_pass(
    kept: list[Conversation], threshold: float, embedder: str, cache_dir: str | Path | None
) -> tuple[list[Conversation], list[dict[str, Any]]]:
    from ..induce.embed import Embedder

    vecs = Embedder(embedder, cache_dir=cache_dir).embed([_text(c)[:2000] for c in kept])
    dup = embedding_duplicates(vecs, threshold)
    removed, survivors = [], []
    for i, c in enumerate(kept):
        if dup[i] < 0:
            survivors.append(c)
            continue
        cos = float(vecs[i] @ vecs[dup[i]])
        removed.append(
            {"id": c.id, "reason": f"embedding cosine {cos:.3f} >= {threshold}", "duplicate_of": kept[dup[i]].id}
        )
    return survivors, removed


def dedup(
    convs: list[Conversation],
    *,
    near: float | None = 0.8,
    embedding: float | None = None,
    embedder: str = "all-MiniLM-L6-v2",
    num_perm: int = 128,
    cache_dir: str | Path | None = None,
) -> tuple[list[Conversation], list[dict[str, Any]]]:
    """Exact, then MinHash near-duplicate (Jaccard of word 3-gram shingles >= `near`), then
    embedding (cosine >= `embedding`) deduplication. The first occurrence is kept."""
    removed: list[dict[str, Any]] = []
    kept = list(_stream(convs, near, num_perm, removed))
    if embedding is not None and len(kept) > 1:
        kept, more = _embedding_pass(kept, embedding, embedder, cache_dir)
        removed.extend(more)
    return kept, removed


def dedup_file(
    data: str | Path,
    out: str | Path,
    report: str | Path,
    *,
    near: float | None = 0.8,
    embedding: float | None = None,
    embedder: str = "all-MiniLM-L6-v2",
    num_perm: int = 128,
    cache_dir: str | Path | None = None,
    on_error: OnError = "skip",
) -> tuple[int, int, list[dict[str, Any]]]:
    """Dedup a file into `out` and write the removals to `report` (JSONL). Exact and near
    dedup stream; embedding dedup holds the survivors' vectors. Returns (kept, read, removed)."""
    removed: list[dict[str, Any]] = []
    read = [0]

    def counted() -> Iterator[Conversation]:
        for c in iter_conversations(data, on_error=on_error):
            read[0] += 1
            yield c

    survivors = _stream(counted(), near, num_perm, removed)
    if embedding is None:
        n = write_conversations(survivors, out)
    else:
        kept, more = _embedding_pass(list(survivors), embedding, embedder, cache_dir)
        removed.extend(more)
        n = write_conversations(kept, out)
    with atomic_writer(report) as f:
        for r in removed:
            f.write(orjson.dumps(r) + b"\n")
    return n, read[0], removed
