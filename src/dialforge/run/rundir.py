"""The run directory: manifest, append-only outputs, call cache, usage and log.

Re-running the same command on the same directory resumes it; a different config is refused
unless `force_new`, which moves the old directory aside (nothing produced is ever deleted).
One process at a time holds a run directory (`run/lock.py`); a damaged manifest, cache or
usage snapshot is moved aside with a warning and rebuilt from what is valid.
"""

from __future__ import annotations

import hashlib
import logging
import platform
import sqlite3
import sys
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel

from .._version import __version__
from ..config import fingerprint_data
from ..errors import RunDirConflict
from ..io.files import aside_path, atomic_write_bytes
from ..llm.cache import CallCache
from ..llm.redact import redact
from ..llm.secrets import MaskSecretsFilter
from ..llm.usage import UsageTracker
from .lock import RunLock
from .store import RecordStore

log = logging.getLogger("dialforge")


def config_fingerprint(config: BaseModel | dict[str, Any]) -> str:
    blob = orjson.dumps(fingerprint_data(config), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(blob).hexdigest()[:16]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class RunDir:
    """One run's home. Use as a context manager; `close()` flushes usage and the manifest."""

    def __init__(
        self,
        path: str | Path,
        *,
        command: str,
        config: BaseModel | dict[str, Any],
        models: dict[str, str] | None = None,
        force_new: bool = False,
        use_cache: bool = True,
    ) -> None:
        self.path = Path(path)
        self.command = command
        self.fingerprint = config_fingerprint(config)
        self.resumed = False
        self._lock = RunLock(self.path).acquire()
        try:
            old = self._read_manifest()
            if old is not None:
                same = old.get("config_fingerprint") == self.fingerprint and old.get("command") == command
                if not same and not force_new and produced_nothing(self.path):
                    # a run that failed before its first result (a bad library, a tokenizer that
                    # would not load): nothing to lose, so the fixed config need not say --force-new
                    log.warning("%s holds a run with another config that produced nothing", self.path)
                    force_new = True
                if not same and not force_new:
                    raise RunDirConflict(
                        f"{self.path} holds a run of `{old.get('command')}` with a different config "
                        f"(fingerprint {old.get('config_fingerprint')} != {self.fingerprint}); "
                        "use another --out directory, or --force-new to move the old run aside"
                    )
                if not same:
                    self._lock = move_run_aside(self.path, self._lock)
                else:
                    self.resumed = True
                    self.manifest = old
            self._open(config, models, use_cache)
        except BaseException:
            self._lock.release()
            raise

    def _read_manifest(self) -> dict[str, Any] | None:
        path = self.path / "manifest.json"
        if not path.exists():
            return None
        try:
            old = orjson.loads(path.read_bytes())
            if not isinstance(old, dict) or not isinstance(old.get("stages", {}), dict):
                raise ValueError("not a manifest object")
            return old
        except (orjson.JSONDecodeError, ValueError) as e:
            aside = aside_path(path, "corrupt")
            path.rename(aside)
            log.warning("%s is unreadable (%s): moved to %s; resuming with a new manifest", path, e, aside.name)
            return None

    def _repair_manifest(self) -> None:
        """A resumed manifest whose bookkeeping fields have the wrong type (edited by hand, or
        by another tool): each is reset with a warning, never a traceback. The fingerprint
        matched, so the outputs are this config's and are kept."""
        m = self.manifest
        where = self.path / "manifest.json"
        for key, ok, fresh in (
            ("resumes", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, 0),
            ("models", lambda v: isinstance(v, dict), {}),
            ("stages", lambda v: isinstance(v, dict), {}),
        ):
            if key in m and not ok(m[key]):
                log.warning("%s: field '%s' is %r, not what a manifest holds: reset", where, key, m[key])
            if key not in m or not ok(m[key]):
                m[key] = fresh
        for name, info in list(m["stages"].items()):
            if not isinstance(info, dict):
                log.warning("%s: field 'stages.%s' is not an object: the stage is checked again", where, name)
                del m["stages"][name]

    def _open(self, config: BaseModel | dict[str, Any], models: dict[str, str] | None, use_cache: bool) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        if not self.resumed:
            cfg = redact(config.model_dump(mode="json") if isinstance(config, BaseModel) else config)
            self.manifest = {
                "dialforge_version": __version__,
                "command": self.command,
                "config_fingerprint": self.fingerprint,
                "config": cfg,
                "models": models or {},
                "created_at": _now(),
                "updated_at": _now(),
                "python": sys.version.split()[0],
                "platform": platform.platform(),
                "packages": _package_versions(),
                "stages": {},
                "resumes": 0,
            }
        else:
            self._repair_manifest()
            self.manifest["resumes"] += 1
            self.manifest["models"].update(models or {})
        self._log_handler = logging.FileHandler(self.path / "run.log", encoding="utf-8")
        self._log_handler.addFilter(MaskSecretsFilter())  # keys echoed by a server never reach run.log
        self._log_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger("dialforge").addHandler(self._log_handler)
        logging.getLogger("dialforge").setLevel(logging.INFO)
        log.info("%s run %s (config %s)", "resumed" if self.resumed else "started", self.path, self.fingerprint)
        # the cache doubles as the usage ledger: --no-cache still records, it only never answers
        self.cache = CallCache(self.path / "cache.sqlite", read=use_cache)
        self.usage = UsageTracker(self.path / "usage.json", ledger=self.cache)
        self._stores: dict[str, RecordStore] = {}
        self.write_manifest()

    def store(self, name: str) -> RecordStore:
        if name not in self._stores:
            self._stores[name] = RecordStore(self.path / name)
        return self._stores[name]

    def stage_done(self, stage: str, **info: Any) -> None:
        self.manifest["stages"][stage] = {"done": True, "finished_at": _now(), **info}
        self.write_manifest()

    def is_done(self, stage: str) -> bool:
        return bool(self.manifest["stages"].get(stage, {}).get("done"))

    def write_manifest(self) -> None:
        self.manifest["updated_at"] = _now()
        atomic_write_bytes(
            self.path / "manifest.json",
            orjson.dumps(self.manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS),
        )

    def close(self) -> None:
        for s in self._stores.values():
            s.close()
        self.usage.flush()
        self.write_manifest()
        self.cache.close()
        logging.getLogger("dialforge").removeHandler(self._log_handler)
        self._log_handler.close()
        self._lock.release()

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "transformers", "sentence-transformers", "trl", "peft", "aiohttp", "pydantic", "xgrammar"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def produced_nothing(path: Path) -> bool:
    """No record in any output and no cached answer: a run that stopped before its first result."""
    if any(p.stat().st_size for p in path.rglob("*.jsonl")) or (path / "library.json").exists():
        return False
    db = path / "cache.sqlite"
    if not db.exists():
        return True
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
            return con.execute("SELECT 1 FROM calls LIMIT 1").fetchone() is None
    except sqlite3.Error:  # unreadable: assume it holds something
        return False


def move_run_aside(path: Path, lock: RunLock) -> RunLock:
    """`--force-new`: the run directory `path` (locked by `lock`) is renamed to `PATH.old-*`
    (nothing is deleted) and a fresh one at `path` is locked instead."""
    lock.release()
    aside = aside_path(path, "old")
    path.rename(aside)
    log.warning("moved the previous run to %s", aside)
    return RunLock(path).acquire()
