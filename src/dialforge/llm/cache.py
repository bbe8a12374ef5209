"""SQLite call cache and usage ledger: a re-run or a resumed run sends only the calls it has
not made, and usage counts survive kill -9 exactly.

A call's usage is recorded in the same transaction as its cache row, so after a crash the
ledger counts every answer that was stored, and nothing twice. A corrupt database file is
moved aside with a warning and a fresh one started (the run then re-sends what it needs).
"""

from __future__ import annotations

import asyncio
import copy
import functools
import hashlib
import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from .types import ChatRequest, Completion, SamplingParams

if TYPE_CHECKING:
    from .usage import UsageCounter

log = logging.getLogger("dialforge.run")

_COUNTER_COLUMNS = ("calls", "prompt_tokens", "completion_tokens", "retries", "cache_hits", "failures", "latency_s")
_KNOWN_MAX = 2_000_000
_HOLD_MAX = 512  # rows and writes held for one group commit, at most
_UPSERT_USAGE = (
    f"INSERT INTO usage VALUES ({','.join('?' * (2 + len(_COUNTER_COLUMNS)))}) ON CONFLICT(stage, model) "
    f"DO UPDATE SET {', '.join(f'{c}={c}+excluded.{c}' for c in _COUNTER_COLUMNS)}"
)


@functools.lru_cache(maxsize=256)
def _params_json(params: SamplingParams) -> dict[str, Any]:
    """A frozen SamplingParams as JSON, dumped once (most calls of a run share a handful)."""
    return params.model_dump(mode="json")


def request_key(model_id: str, req: ChatRequest) -> str:
    """What determines an answer: model, messages, sampling, schema, sample index, and the
    tools offered (a request without tools keeps the key it always had)."""
    parts: list[Any] = [model_id, req.messages, _params_json(req.params), req.schema, req.sample_index]
    if req.prompt is not None:  # a raw token-id prompt (trained simulators)
        parts.append(req.prompt)
    if req.tools:
        parts.append({"tools": req.tools})
    blob = orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(blob).hexdigest()


def _open(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, model TEXT, value BLOB)")
    cols = ", ".join(f"{c} {'REAL' if c == 'latency_s' else 'INTEGER'} NOT NULL DEFAULT 0" for c in _COUNTER_COLUMNS)
    db.execute(f"CREATE TABLE IF NOT EXISTS usage (stage TEXT, model TEXT, {cols}, PRIMARY KEY (stage, model))")
    db.execute("CREATE TABLE IF NOT EXISTS merged (tag TEXT PRIMARY KEY)")  # worker caches merged in
    db.execute("SELECT COUNT(*) FROM usage").fetchone()  # a damaged file fails here, not mid-run
    return db


class CallCache:
    """Successful completions by request key, plus the usage ledger. Safe to share between
    stages of one process. `read=False` (--no-cache) still records, but never answers."""

    def __init__(self, path: str | Path, *, read: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.read = read
        self._lock = threading.Lock()
        self._pending_calls: dict[str, tuple[str, str, bytes]] = {}
        self._pending_usage: dict[tuple[str, str], UsageCounter] = {}
        self._scheduled_on: asyncio.AbstractEventLoop | None = None
        self._after: list[Callable[[], object]] = []
        try:
            self._db = _open(self.path)
        except sqlite3.DatabaseError as e:
            from ..io.files import aside_path

            aside = aside_path(self.path, "corrupt")
            self.path.rename(aside)
            for ext in ("-wal", "-shm"):
                side = self.path.with_name(self.path.name + ext)
                if side.exists():
                    side.rename(aside.with_name(aside.name + ext))
            log.warning("%s is corrupt (%s): moved to %s, starting a fresh cache", self.path, e, aside.name)
            self._db = _open(self.path)
        # A cache that opened empty holds only what this object stored: the 64-bit hashes of
        # those keys let a lookup that must miss (a fresh run's every call) skip SQLite, ~40 us
        # per call in a running engine. Up to _KNOWN_MAX keys (~60 bytes each); past that, or
        # once another cache's rows are merged in, every lookup asks SQLite.
        empty = self._db.execute("SELECT NOT EXISTS (SELECT 1 FROM calls)").fetchone()[0]
        self._known: set[int] | None = set() if empty else None

    def get(self, key: str) -> Completion | None:
        if not self.read:
            return None
        known = self._known
        if known is not None and hash(key) not in known:
            return None
        with self._lock:
            held = self._pending_calls.get(key)
            row = (held[2],) if held else self._db.execute("SELECT value FROM calls WHERE key=?", (key,)).fetchone()
        return Completion.from_cache(orjson.loads(row[0])) if row else None

    def put(self, key: str, comp: Completion) -> None:
        self.record(None, None, key, comp)

    def record(self, stage: str | None, delta: UsageCounter | None, key: str | None, comp: Completion | None) -> None:
        """The cache row (a successful answer under `key`) and the usage increment `delta` of
        (stage, model), committed in one transaction.

        Inside an event loop, the rows of one loop turn are committed together at the start of
        the next (group commit: one WAL write for many answers, which is most of the cost per
        call); `commit()` makes them durable at once, and `after_commit` orders a write after
        them. Outside a loop each call commits at once, and so does a turn holding `_HOLD_MAX`
        rows and writes (in-process answers can run many conversations without yielding)."""
        value = orjson.dumps(comp.to_cache()) if key is not None and comp is not None and comp.ok else None
        if value is None and delta is None:
            return
        with self._lock:
            if value is not None:
                assert comp is not None and key is not None
                self._hold_call(key, comp.model, value)
            if delta is not None and stage is not None:
                self._hold_usage((stage, comp.model if comp is not None else ""), delta)
            loop = self._commit_loop()
            if loop is not None:
                if self._scheduled_on is loop:
                    return
                self._scheduled_on = loop  # a callback left on a finished loop is replaced here
        if loop is None:
            self.commit()
        else:
            loop.call_soon(self.commit)

    def _hold_call(self, key: str, model: str, value: bytes) -> None:
        self._pending_calls[key] = (key, model, value)
        if self._known is not None:
            self._known.add(hash(key))
            if len(self._known) > _KNOWN_MAX:
                self._known = None

    def _hold_usage(self, ukey: tuple[str, str], delta: UsageCounter) -> None:
        held = self._pending_usage.get(ukey)
        if held is None:
            self._pending_usage[ukey] = copy.copy(delta)  # our own to add to
        else:
            held.add(delta)

    def _commit_loop(self) -> asyncio.AbstractEventLoop | None:
        """The running loop whose next turn commits the held rows; None: commit now (no
        loop, or a loop turn that never yields, as in-process answers do, holds the most)."""
        if self._holding_max():
            return None
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            return None

    def after_commit(self, fn: Callable[[], object]) -> None:
        """Run `fn` once the rows held now are committed (at once when none are held): the
        kernel writes a job's record this way, so a record never refers to an answer the
        ledger lacks, and records finished in one loop turn share that turn's commit."""
        with self._lock:
            held = bool(self._pending_calls or self._pending_usage)
            if held:
                self._after.append(fn)
                if not self._holding_max():
                    return
        if held:
            self.commit()
        else:
            fn()

    def _holding_max(self) -> bool:
        return len(self._pending_calls) + len(self._after) >= _HOLD_MAX

    def commit(self) -> None:
        """Commit the rows `record` holds, then run what waits on them (a no-op when none)."""
        with self._lock:
            self._scheduled_on = None
            self._write_held()
            after, self._after = self._after, []
        for fn in after:
            fn()

    def _write_held(self) -> None:
        if not self._pending_calls and not self._pending_usage:
            return
        calls, self._pending_calls = list(self._pending_calls.values()), {}
        usage = [(s, m, *d.values()) for (s, m), d in self._pending_usage.items()]
        self._pending_usage = {}
        self._db.execute("BEGIN")
        try:
            if calls:
                self._db.executemany("INSERT OR REPLACE INTO calls VALUES (?,?,?)", calls)
            if usage:
                self._db.executemany(_UPSERT_USAGE, usage)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def merge(self, tag: str, calls: list[tuple[Any, ...]], usage: list[tuple[Any, ...]]) -> bool:
        """Another cache's rows (a Ray worker's, `call_rows()` and `usage_rows()`) in one
        transaction, once per `tag`: a driver killed after the merge never adds usage twice.
        False when `tag` was merged before."""
        self.commit()
        with self._lock:
            self._known = None
            self._db.execute("BEGIN")
            try:
                if self._db.execute("SELECT 1 FROM merged WHERE tag=?", (tag,)).fetchone():
                    self._db.execute("ROLLBACK")
                    return False
                self._db.executemany("INSERT OR IGNORE INTO calls VALUES (?,?,?)", calls)
                self._db.executemany(_UPSERT_USAGE, usage)
                self._db.execute("INSERT INTO merged VALUES (?)", (tag,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return True

    def call_rows(self) -> list[tuple[Any, ...]]:
        self.commit()
        with self._lock:
            return self._db.execute("SELECT key, model, value FROM calls").fetchall()

    def usage_rows(self) -> list[tuple[Any, ...]]:
        self.commit()
        with self._lock:
            return self._db.execute(f"SELECT stage, model, {', '.join(_COUNTER_COLUMNS)} FROM usage").fetchall()

    def __len__(self) -> int:
        self.commit()
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM calls").fetchone()[0])

    def stats(self) -> dict[str, Any]:
        self.commit()
        with self._lock:
            rows = self._db.execute("SELECT model, COUNT(*) FROM calls GROUP BY model").fetchall()
        return {m: n for m, n in rows}

    def close(self) -> None:
        self.commit()
        with self._lock:
            self._db.close()
