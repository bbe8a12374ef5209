"""`dialforge dedup`: exact, MinHash near-duplicate and embedding deduplication.

The first occurrence is kept; every removal is reported with its reason and the id it
duplicates. Exact and near dedup stream; what grows with the data is a few hundred bytes
per distinct conversation (its digest, its 16 LSH band keys in sorted runs, offsets), while
ids, signatures and shingles wait in temporary files (peak RSS 137 MiB at 20k, 163 at
100k). MinHash signatures are computed for a whole conversation at once with numpy (a
batch of conversations at a time, 3-word shingles combined arithmetically) with
datasketch's permutations; LSH bands are tuned for recall and every candidate is confirmed
by the exact Jaccard of the two shingle sets (read back from a temporary file), so nothing
below the threshold is ever removed. Embedding dedup compares each block of
conversations with all kept ones by blocked matrix products: O(n k d) time, no growing
matrix copies.
"""

from __future__ import annotations

import hashlib
import zlib
from array import array
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from ..conversation import Conversation
from ..errors import DialforgeError
from ..io.files import atomic_writer, check_output
from ..io.output import write_conversations
from ..io.reader import iter_conversations
from ..io.report import OnError

_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F), np.uint64(0x165667B19E3779F9))


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _text(c: Conversation) -> str:
    return "\n".join(m.content for m in c.dialogue())


def exact_key(normalised: str) -> bytes:
    """Digest of the normalised dialogue text (case and whitespace ignored)."""
    return hashlib.blake2b(normalised.encode(), digest_size=16).digest()


_P = 0x100000001B3


_P_INV = pow(_P, -1, 1 << 64)


class _Powers:
    """P^i and P^-i modulo 2^64 for i up to the longest batch seen, grown on demand."""

    def __init__(self) -> None:
        self.pow = self.inv = np.ones(1, dtype=np.uint64)

    def upto(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        if len(self.pow) <= n:
            size = max(n + 1, 2 * len(self.pow), 1 << 16)
            self.pow, self.inv = (self._table(x, size) for x in (_P, _P_INV))
        return self.pow, self.inv

    @staticmethod
    def _table(base: int, size: int) -> np.ndarray:
        steps = np.full(size, base, dtype=np.uint64)
        steps[0] = 1
        return np.multiply.accumulate(steps)  # uint64 arithmetic wraps: modulo 2^64


def word_hashes(normalised: str, powers: _Powers) -> np.ndarray:
    """64-bit polynomial hashes of the space-separated words of `normalised`, all at once:
    prefix sums of byte x P^i give each word's sum of byte x P^(i - start) after scaling by
    P^-start (no Python loop over words)."""
    buf = np.frombuffer(normalised.encode(), dtype=np.uint8)
    pw, inv = powers.upto(len(buf))
    spaces = np.flatnonzero(buf == 32)
    starts = np.concatenate(([0], spaces + 1))
    ends = np.concatenate((spaces, [len(buf)]))
    prefix = np.zeros(len(buf) + 1, dtype=np.uint64)
    np.cumsum(buf.astype(np.uint64) * pw[: len(buf)], out=prefix[1:])
    return (prefix[ends] - prefix[starts]) * inv[starts]


def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch 2's affine32 permutations for (num_perm, seed) (`MinHash._init_permutations`;
    equal by test), without importing datasketch, whose import pulls in scipy (seconds)."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's finalizer, as datasketch pre-mixes inputs in its affine32 scheme."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


class MinHasher:
    """MinHash signatures of word 3-gram shingle sets, vectorised with datasketch's affine32
    scheme (`a * fmix(h) + b` in uint32; no modulo). `signatures` does a whole batch of
    documents in a few numpy passes (no Python loop per document, word or shingle)."""

    def __init__(self, num_perm: int = 128, seed: int = 1) -> None:
        a, b = _permutations(num_perm, seed)
        self.a, self.b = a[:, None], b[:, None]
        self.num_perm = num_perm
        self._powers = _Powers()
        self._buf = np.empty((num_perm, 0), dtype=np.uint32)

    def shingles(self, normalised: str) -> np.ndarray:
        """32-bit hashes of the word 3-grams of normalised text (one shingle if shorter)."""
        return self.batch_shingles([normalised])[0]

    def batch_shingles(self, texts: list[str]) -> list[np.ndarray]:
        """`shingles` of each text: word hashes of all texts in one pass over their
        concatenation, 3-grams kept where all three words belong to one text."""
        if not texts:
            return []
        words = np.fromiter((t.count(" ") + 1 for t in texts), dtype=np.int64, count=len(texts))
        w = word_hashes(" ".join(texts), self._powers)
        mixed: np.ndarray = w[:-2] * _MIX[0] + w[1:-1] * _MIX[1] + w[2:] * _MIX[2]
        hv = np.right_shift(mixed, np.uint64(32)).astype(np.uint32)
        starts = np.concatenate(([0], np.cumsum(words)[:-1]))
        out = []
        for i, (s, k) in enumerate(zip(starts.tolist(), words.tolist(), strict=True)):
            if k < 3:
                out.append(np.array([zlib.crc32(texts[i].encode())], dtype=np.uint32))
            else:
                out.append(hv[s : s + k - 2])
        return out

    def signature(self, normalised: str) -> np.ndarray:
        return self.signatures([self.shingles(normalised)])[0]

    def signatures(self, shingles: list[np.ndarray], chunk: int = 8192) -> np.ndarray:
        """One signature row per shingle array: the permuted minimum over each document,
        for many short documents at once (`np.minimum.reduceat` over their concatenation),
        in column chunks that bound the temporaries."""
        out = np.empty((len(shingles), self.num_perm), dtype=np.uint32)
        i = 0
        while i < len(shingles):
            j, total = i, 0
            while j < len(shingles) and (j == i or total + len(shingles[j]) <= chunk):
                total += len(shingles[j])
                j += 1
            if j == i + 1:
                out[i] = self._one(shingles[i], chunk)
            else:
                hv = _fmix32(np.concatenate(shingles[i:j]))
                bounds = np.cumsum([0] + [len(x) for x in shingles[i : j - 1]])
                work = self._work(chunk)[:, : len(hv)]  # reused: no fresh pages per batch
                np.multiply(self.a, hv, out=work)
                np.add(work, self.b, out=work)
                out[i:j] = np.minimum.reduceat(work, bounds, axis=1).T
            i = j
        return out

    def _work(self, chunk: int) -> np.ndarray:
        if self._buf.shape[1] < chunk:
            self._buf = np.empty((self.num_perm, chunk), dtype=np.uint32)
        return self._buf

    def _one(self, shingles: np.ndarray, chunk: int) -> np.ndarray:
        hv = _fmix32(shingles)
        sig = np.full(self.num_perm, np.uint32(0xFFFFFFFF), dtype=np.uint32)
        for s in range(0, len(hv), chunk):  # bounded temporaries for very long texts
            np.minimum(sig, (self.a * hv[s : s + chunk] + self.b).min(axis=1), out=sig)
        return sig


def lsh_bands(threshold: float, num_perm: int, recall: float = 0.9) -> tuple[int, int]:
    """(bands, rows): the most rows per band (fewest chance candidates) for which a pair at
    exactly the threshold still shares a band with probability >= `recall`. Candidates are
    confirmed by their exact Jaccard, so a chance candidate costs a check, never a removal."""
    for rows in range(num_perm, 0, -1):
        bands = num_perm // rows
        if 1 - (1 - threshold**rows) ** bands >= recall:
            return bands, rows
    return num_perm, 1


class _Runs:
    """A multimap of integer keys to int32 values in a few bytes an entry, for indexes that
    grow with the data: recent entries in a small dict, older ones in sorted numpy runs of at
    most `run` entries (the open run grows by sorted insertion until full, then is frozen:
    nothing ever copies the whole index, so memory grows by the bytes an entry needs)."""

    def __init__(self, dtype: type = np.uint32, run: int = 1 << 20, batch: int = 1 << 14) -> None:
        self.dtype = dtype
        self.run, self.batch = run, batch
        self.frozen: list[tuple[np.ndarray, np.ndarray]] = []
        self.keys: np.ndarray = np.empty(0, dtype=dtype)
        self.vals: np.ndarray = np.empty(0, dtype=np.int32)
        self.recent: dict[int, list[int]] = {}
        self.n_recent = 0

    def add(self, key: int, val: int) -> None:
        got = self.recent.get(key)
        if got is None:
            self.recent[key] = [val]
        else:
            got.append(val)
        self.n_recent += 1
        if self.n_recent >= self.batch:
            self._merge()

    def _merge(self) -> None:
        ks: np.ndarray = np.fromiter(
            (k for k, v in self.recent.items() for _ in v), dtype=self.dtype, count=self.n_recent
        )
        vs: np.ndarray = np.fromiter(
            (v for v_list in self.recent.values() for v in v_list), dtype=np.int32, count=self.n_recent
        )
        order = np.argsort(ks, kind="stable")
        ks, vs = ks[order], vs[order]
        self.recent, self.n_recent = {}, 0
        if len(self.keys) + len(ks) > self.run:
            if len(self.keys):
                self.frozen.append((self.keys, self.vals))
            self.keys, self.vals = ks, vs
            return
        at = np.searchsorted(self.keys, ks, side="right")
        self.keys, self.vals = np.insert(self.keys, at, ks), np.insert(self.vals, at, vs)

    def get(self, keys: list[int]) -> np.ndarray:
        """The values of any of `keys`, sorted, each once."""
        parts: list[np.ndarray] = []
        q: np.ndarray = np.asarray(keys, dtype=self.dtype)
        for k, v in [*self.frozen, (self.keys, self.vals)]:
            if not len(k):
                continue
            lo, hi = np.searchsorted(k, q, side="left"), np.searchsorted(k, q, side="right")
            parts += [v[a:b] for a, b in zip(lo[hi > lo].tolist(), hi[hi > lo].tolist(), strict=True)]
        for key in keys:
            got = self.recent.get(key)
            if got is not None:
                parts.append(np.asarray(got, dtype=np.int32))
        if not parts:
            return np.empty(0, dtype=np.int64)
        return np.unique(np.concatenate(parts)).astype(np.int64)


class _Strings:
    """Strings by index in a temporary file (8 bytes of memory each): the kept ids, read
    back only to name what a removed conversation duplicates."""

    def __init__(self) -> None:
        import tempfile

        self._file = tempfile.TemporaryFile(prefix="dialforge-ids-")
        self._at = array("q", [0])

    def __len__(self) -> int:
        return len(self._at) - 1

    def append(self, text: str) -> int:
        b = text.encode()
        self._file.seek(self._at[-1])
        self._file.write(b)
        self._at.append(self._at[-1] + len(b))
        return len(self._at) - 2

    def __getitem__(self, i: int) -> str:
        self._file.seek(self._at[i])
        return self._file.read(self._at[i + 1] - self._at[i]).decode()

    def close(self) -> None:
        self._file.close()


class NearIndex:
    """LSH over MinHash signatures; every candidate is confirmed by the exact Jaccard of the
    two shingle sets. The kept documents' shingles and signatures go to temporary files
    (written once per batch, read back only for candidates), and the band keys (32 bits:
    a chance match is one more candidate to check) to sorted runs: memory holds about 10
    bytes per band and 8 per document."""

    def __init__(self, threshold: float, num_perm: int = 128) -> None:
        import tempfile

        self.threshold = threshold
        self.num_perm = num_perm
        self.bands, self.rows = lsh_bands(threshold, num_perm)
        rng = np.random.default_rng(12345)
        self._mix = rng.integers(1, 2**63, size=self.rows, dtype=np.uint64) | np.uint64(1)
        self._salt = rng.integers(0, 2**63, size=self.bands, dtype=np.uint64)
        self._buckets = _Runs(np.uint32)  # band key (salted by band) -> documents
        self._file = tempfile.TemporaryFile(prefix="dialforge-near-")
        self._sig_file = tempfile.TemporaryFile(prefix="dialforge-near-")
        self._where = array("q")  # offset (in shingles) of each inserted document, then the end
        self._where.append(0)
        self._pending: list[np.ndarray] = []
        self._pending_sigs: list[np.ndarray] = []
        self._flushed = 0  # documents already in the files

    def band_keys(self, sigs: np.ndarray) -> list[list[int]]:
        """One 32-bit key per band of each signature (a mix of the band's rows, salted by the
        band so that one index holds every band)."""
        used = sigs[:, : self.bands * self.rows].reshape(len(sigs), self.bands, self.rows).astype(np.uint64)
        mixed = ((used * self._mix).sum(axis=2) ^ self._salt) >> np.uint64(32)
        keys: list[list[int]] = mixed.tolist()
        return keys

    def _shingles(self, i: int) -> np.ndarray:
        if i >= self._flushed:
            return self._pending[i - self._flushed]
        self._file.seek(self._where[i] * 4)
        return np.fromfile(self._file, dtype=np.uint32, count=self._where[i + 1] - self._where[i])

    def _sig(self, i: int) -> np.ndarray:
        if i >= self._flushed:
            return self._pending_sigs[i - self._flushed]
        self._sig_file.seek(i * self.num_perm * 4)
        return np.fromfile(self._sig_file, dtype=np.uint32, count=self.num_perm)

    def query(self, keys: list[int], sig: np.ndarray, shingles: np.ndarray) -> tuple[int, float] | None:
        """(index of the first inserted document with Jaccard >= threshold, its Jaccard).
        Candidates whose signatures agree on fewer than threshold - 0.15 of their values
        (four standard deviations of the estimate at 128 permutations) are not read back."""
        order = self._buckets.get(keys)
        if not len(order):
            return None
        sigs = np.stack([self._sig(i) for i in order.tolist()])
        agree = np.count_nonzero(sigs == sig, axis=1) / len(sig)
        order = order[agree >= self.threshold - 0.15]
        if not len(order):
            return None
        mine = _sorted_set(shingles)
        for i in order.tolist():
            other = _sorted_set(self._shingles(i))
            inter = _intersection(mine, other)
            j = inter / (len(mine) + len(other) - inter)
            if j >= self.threshold:
                return i, j
        return None

    def insert(self, keys: list[int], sig: np.ndarray, shingles: np.ndarray) -> int:
        i = len(self._where) - 1
        self._pending_sigs.append(np.ascontiguousarray(sig, dtype=np.uint32))
        self._pending.append(shingles)
        self._where.append(self._where[-1] + len(shingles))
        for key in keys:
            self._buckets.add(key, i)
        return i

    def flush(self) -> None:
        """Write the shingles and signatures inserted since the last flush (once per batch)."""
        if self._pending:
            self._file.seek(self._where[self._flushed] * 4)
            np.concatenate(self._pending).tofile(self._file)
            self._sig_file.seek(self._flushed * self.num_perm * 4)
            np.stack(self._pending_sigs).tofile(self._sig_file)
            self._flushed += len(self._pending)
            self._pending, self._pending_sigs = [], []

    def close(self) -> None:
        self._file.close()
        self._sig_file.close()


def _sorted_set(x: np.ndarray) -> np.ndarray:
    x = np.sort(x)
    return x[np.concatenate(([True], x[1:] != x[:-1]))]


def _intersection(a: np.ndarray, b: np.ndarray) -> int:
    """Size of the intersection of two sorted sets."""
    if len(a) > len(b):
        a, b = b, a
    idx = np.minimum(np.searchsorted(b, a), len(b) - 1)
    return int(np.count_nonzero(b[idx] == a))


def _chunks(convs: Iterable[Conversation], size: int) -> Iterator[list[Conversation]]:
    chunk: list[Conversation] = []
    for c in convs:
        chunk.append(c)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class _Near:
    """Near-duplicate state of one dedup run: the hasher, the index, the kept ids."""

    def __init__(self, threshold: float, num_perm: int) -> None:
        self.threshold = threshold
        self.hasher = MinHasher(num_perm)
        self.index = NearIndex(threshold, num_perm)
        self.handles = array("q")  # near index -> the caller's handle (an index into its ids)

    def prepare(self, texts: list[str]) -> tuple[list[np.ndarray], np.ndarray, list[list[int]]]:
        shingles = self.hasher.batch_shingles(texts)
        sigs = self.hasher.signatures(shingles)
        return shingles, sigs, self.index.band_keys(sigs)

    def check(self, handle: int, keys: list[int], sig: np.ndarray, shingles: np.ndarray) -> tuple[int, float] | None:
        """(the handle of the kept document this one nearly duplicates, their Jaccard), or
        None after inserting this one under `handle`."""
        hit = self.index.query(keys, sig, shingles)
        if hit is not None:
            return self.handles[hit[0]], hit[1]
        self.index.insert(keys, sig, shingles)
        self.handles.append(handle)
        return None


def _stream(
    convs: Iterable[Conversation], near: float | None, num_perm: int, removed: list[dict[str, Any]], chunk: int = 256
) -> Iterator[Conversation]:
    """Exact then near dedup in file order; signatures are computed a chunk at a time. What
    grows with the data is small: per distinct text a 16-byte digest in sorted runs and an
    id offset (the ids themselves in a temporary file), per near-kept one its band keys."""
    ids = _Strings()  # the id of each distinct text, in order
    heads = _Runs(np.uint64)  # first 8 bytes of a digest -> index into ids
    tails = array("Q")  # last 8 bytes of each distinct text's digest (confirms a head match)
    state = _Near(near, num_perm) if near is not None else None
    try:
        for batch in _chunks(convs, chunk if state is not None else 1):  # exact alone: one at a time
            texts = [_norm(_text(c)) for c in batch]
            fresh = []
            for c, text in zip(batch, texts, strict=True):
                h = exact_key(text)
                head, tail = int.from_bytes(h[:8], "little"), int.from_bytes(h[8:], "little")
                same = next((i for i in heads.get([head]).tolist() if tails[i] == tail), None)
                if same is not None:
                    removed.append({"id": c.id, "reason": "exact", "duplicate_of": ids[same]})
                    continue
                handle = ids.append(c.id)
                heads.add(head, handle)
                tails.append(tail)
                fresh.append((c, text, handle))
            if state is None:
                yield from (c for c, _, _ in fresh)
                continue
            shingles, sigs, keys = state.prepare([t for _, t, _ in fresh])
            kept = []
            for (c, _, handle), sh, sig, k in zip(fresh, shingles, sigs, keys, strict=True):
                hit = state.check(handle, k, sig, sh)
                if hit is None:
                    kept.append(c)
                else:
                    removed.append(
                        {
                            "id": c.id,
                            "reason": f"near-duplicate (Jaccard {hit[1]:.2f} >= {state.threshold})",
                            "duplicate_of": ids[hit[0]],
                        }
                    )
            state.index.flush()
            yield from kept
    finally:
        ids.close()
        if state is not None:
            state.index.close()


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
    for name, value in (("near", near), ("embedding", embedding)):
        if value is not None and not 0 < value <= 1:
            raise DialforgeError(f"dedup {name} threshold {value} is outside (0, 1]")
    check_output(out)
    check_output(report)  # refuse before the reading, not after it
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
