"""SQLite call cache: a re-run or a resumed run sends only the calls it has not made."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path
from typing import Any

import orjson

from .types import ChatRequest, Completion


def request_key(model_id: str, req: ChatRequest) -> str:
    """What determines an answer: model, messages, sampling, schema and sample index."""
    blob = orjson.dumps(
        [model_id, req.messages, req.params.model_dump(mode="json"), req.schema, req.sample_index],
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(blob).hexdigest()


class CallCache:
    """Successful completions by request key. Safe to share between stages of one process."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, model TEXT, value BLOB)")

    def get(self, key: str) -> Completion | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM calls WHERE key=?", (key,)).fetchone()
        return Completion.from_cache(orjson.loads(row[0])) if row else None

    def put(self, key: str, comp: Completion) -> None:
        if not comp.ok:
            return
        value = orjson.dumps(comp.to_cache())
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO calls VALUES (?,?,?)", (key, comp.model, value))

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM calls").fetchone()[0])

    def stats(self) -> dict[str, Any]:
        with self._lock:
            rows = self._db.execute("SELECT model, COUNT(*) FROM calls GROUP BY model").fetchall()
        return {m: n for m, n in rows}

    def close(self) -> None:
        with self._lock:
            self._db.close()
