"""A block directory: where a Ray worker keeps one block's records, call cache and usage.

`RUN_DIR/workers/<stage>.<token>.<n>/` is a small run directory of its own while a worker runs
the block there. The driver merges a finished block into the run directory (records by id,
cache rows, usage once per block, in the cache's transaction) and removes the folder.

- A block retried because its worker or node died reopens the same folder: finished jobs are
  kept, answered calls are cache hits, usage counts each request once.
- A folder a killed driver left behind is merged by the next run, local or Ray, before it
  plans: nothing a worker finished is lost, and a re-run resumes on either executor.
- Without a shared filesystem (the worker cannot see RUN_DIR) the block runs in a temporary
  folder and everything comes back in the result instead.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ..llm.cache import CallCache
from ..llm.types import Completion
from ..llm.usage import UsageCounter, UsageTracker
from .store import RecordStore

if TYPE_CHECKING:
    from .rundir import RunDir
    from .stage import Stage

log = logging.getLogger("dialforge.run")

WORKERS = "workers"


class _LayeredCache(CallCache):
    """Writes go to the block's own cache; a miss is looked up in the run's cache (read-only),
    so a Ray re-run of a local run's unfinished jobs replays what was already answered."""

    def __init__(self, path: Path, base: Path | None, *, read: bool) -> None:
        super().__init__(path, read=read)
        self._base: sqlite3.Connection | None = None
        if base is not None and base.exists() and read:
            try:
                self._base = sqlite3.connect(f"file:{base}?mode=ro", uri=True, check_same_thread=False)
            except sqlite3.Error:
                self._base = None

    def get(self, key: str) -> Completion | None:
        hit = super().get(key)
        if hit is not None or self._base is None:
            return hit
        try:
            row = self._base.execute("SELECT value FROM calls WHERE key=?", (key,)).fetchone()
        except sqlite3.Error:
            return None
        return Completion.from_cache(orjson.loads(row[0])) if row else None

    def close(self) -> None:
        if self._base is not None:
            self._base.close()
        super().close()


class BlockDir:
    """The `RunSpace` a worker runs a block in (`run/kernel.py`)."""

    def __init__(self, path: Path, base_cache: Path | None = None, *, read_cache: bool = True) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.cache: CallCache = _LayeredCache(path / "cache.sqlite", base_cache, read=read_cache)
        self.usage = UsageTracker(None, ledger=self.cache)
        self._stores: dict[str, RecordStore] = {}

    def store(self, name: str) -> RecordStore:
        if name not in self._stores:
            self._stores[name] = RecordStore(self.path / name)
        return self._stores[name]

    def close(self) -> None:
        for s in self._stores.values():
            s.close()
        self.cache.close()


@dataclass(frozen=True)
class BlockSpec:
    """What the driver tells a worker about one block."""

    tag: str  # unique per block and driver run; the folder name and the merge key
    folder: str  # RUN_DIR/workers/<tag>
    marker: str  # RUN_DIR/workers/.driver-<token>: visible to the worker iff the FS is shared
    base_cache: str  # the run's cache.sqlite (read-only fallback)
    read_cache: bool = True


@dataclass
class BlockResult:
    """What comes back from a worker: records, and the rows to merge into the run's cache."""

    tag: str
    records: list[dict[str, Any]]
    calls: list[tuple[Any, ...]]
    usage: list[tuple[Any, ...]]
    endpoints: dict[str, dict[str, int]] = field(default_factory=dict)
    wall_s: float = 0.0
    attempts: int = 1
    reused: int = 0  # jobs a previous attempt of this block had finished
    pid: int = 0
    node: str = ""
    shared: bool = True


def merge_block(stage: Stage, run: RunDir, store: RecordStore, res: BlockResult, replace: set[str]) -> int:
    """Driver side: a block's cache rows and usage (once per tag), then its records by id (a
    stored failed record in `replace` is superseded); the folder is removed last. The number
    of failed records merged."""
    if run.cache.merge(res.tag, res.calls, res.usage):
        _add_usage(run.usage, res.usage)
    failed = 0
    for rec in res.records:
        store.append(rec, replace=rec["id"] in replace)
        if stage.failed(rec):
            failed += 1
            err = rec.get("error") or (rec.get("meta") or {}).get("error") or "failed"
            log.info("%s: job %s failed: %s", stage.name, rec["id"], str(err)[:300])
    shutil.rmtree(run.path / WORKERS / res.tag, ignore_errors=True)
    return failed


def _add_usage(usage: UsageTracker, rows: Iterable[tuple[Any, ...]]) -> None:
    for stage, model, *vals in rows:
        c = usage.counter(stage, model)
        for k, v in vars(UsageCounter(*vals)).items():
            setattr(c, k, getattr(c, k) + v)


def read_block(folder: Path, stage: Stage) -> BlockResult:
    """What a block folder holds (an interrupted worker's, or a lost block's partial work)."""
    bd = BlockDir(folder)
    try:
        return BlockResult(
            tag=folder.name,
            records=list(bd.store(stage.output).records()),
            calls=bd.cache.call_rows(),
            usage=bd.cache.usage_rows(),
        )
    finally:
        bd.close()


def block_prefix(stage: Stage) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in stage.name) + "."


def recover_blocks(stage: Stage, run: RunDir, store: RecordStore) -> int:
    """Merge every block folder of `stage` that a killed driver left behind; records merged."""
    root = run.path / WORKERS
    if not root.is_dir():
        return 0
    merged = 0
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(block_prefix(stage))):
        res = read_block(folder, stage)
        ids = [r["id"] for r in res.records]
        replace = {r["id"] for r in store.get_many(ids) if stage.failed(r)}
        new = sum(1 for i in ids if i not in store or i in replace)
        merge_block(stage, run, store, res, replace)
        merged += new
        log.info("%s: merged %d records and %d cached calls an interrupted worker left in %s",
                 stage.name, new, len(res.calls), folder)  # fmt: skip
    for marker in root.glob(".driver-*"):
        marker.unlink(missing_ok=True)
    if not any(root.iterdir()):
        root.rmdir()
    return merged
