"""The run directory: manifest, append-only outputs, call cache, usage and log.

Re-running the same command on the same directory resumes it; a different config is refused
unless `force_new`, which moves the old directory aside (nothing produced is ever deleted).
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel

from .. import __version__
from ..errors import RunDirConflict
from ..io.reader import atomic_write_bytes
from ..llm.cache import CallCache
from ..llm.usage import UsageTracker

log = logging.getLogger("dialforge")

# Knobs that change how fast a run goes, not what it produces: they may differ on resume.
OPERATIONAL_KEYS = frozenset(
    {
        "max_concurrency",
        "timeout_s",
        "max_retries",
        "backoff_base_s",
        "backoff_max_s",
        "batch_size",
        "device",
        "api_key_env",
        "concurrency",
        "progress",
    }
)


def _strip_operational(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip_operational(v) for k, v in obj.items() if k not in OPERATIONAL_KEYS}
    if isinstance(obj, list):
        return [_strip_operational(v) for v in obj]
    return obj


def config_fingerprint(config: BaseModel | dict[str, Any]) -> str:
    data = config.model_dump(mode="json") if isinstance(config, BaseModel) else config
    blob = orjson.dumps(_strip_operational(data), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(blob).hexdigest()[:16]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class RecordStore:
    """Append-only JSON Lines keyed by `id`: appending a known id is a no-op, so a resumed
    run never duplicates. A line cut short by a crash is trimmed on open."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.ids: set[str] = set()
        self._recover()
        self._f = self.path.open("ab")

    def _recover(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        good = 0
        pos = 0
        while pos < len(data):
            nl = data.find(b"\n", pos)
            if nl < 0:
                break
            line = data[pos:nl]
            if line.strip():
                try:
                    self.ids.add(orjson.loads(line)["id"])
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    break
            pos = good = nl + 1
        if good < len(data):
            log.warning(
                "%s: dropped %d bytes of an incomplete last record (crash recovery)", self.path, len(data) - good
            )
            with self.path.open("r+b") as f:
                f.truncate(good)

    def __contains__(self, rid: str) -> bool:
        return rid in self.ids

    def __len__(self) -> int:
        return len(self.ids)

    def append(self, record: dict[str, Any], sync: bool = False) -> bool:
        rid = record["id"]
        if rid in self.ids:
            return False
        self._f.write(orjson.dumps(record) + b"\n")
        self._f.flush()
        if sync:
            os.fsync(self._f.fileno())
        self.ids.add(rid)
        return True

    def records(self) -> Iterator[dict[str, Any]]:
        self._f.flush()
        with self.path.open("rb") as f:
            for line in f:
                if line.strip():
                    yield orjson.loads(line)

    def close(self) -> None:
        self._f.close()


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
        manifest_path = self.path / "manifest.json"
        self.resumed = False
        if manifest_path.exists():
            old = orjson.loads(manifest_path.read_bytes())
            same = old.get("config_fingerprint") == self.fingerprint and old.get("command") == command
            if not same and not force_new:
                raise RunDirConflict(
                    f"{self.path} holds a run of `{old.get('command')}` with a different config "
                    f"(fingerprint {old.get('config_fingerprint')} != {self.fingerprint}); "
                    "use another --out directory, or --force-new to move the old run aside"
                )
            if not same:
                aside = self.path.with_name(f"{self.path.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
                self.path.rename(aside)
                log.warning("moved the previous run to %s", aside)
            else:
                self.resumed = True
                self.manifest = old
        self.path.mkdir(parents=True, exist_ok=True)
        if not self.resumed:
            cfg = config.model_dump(mode="json") if isinstance(config, BaseModel) else config
            self.manifest = {
                "dialforge_version": __version__,
                "command": command,
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
            self.manifest["resumes"] = self.manifest.get("resumes", 0) + 1
            self.manifest["models"].update(models or {})
        self._log_handler = logging.FileHandler(self.path / "run.log", encoding="utf-8")
        self._log_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger("dialforge").addHandler(self._log_handler)
        logging.getLogger("dialforge").setLevel(logging.INFO)
        log.info("%s run %s (config %s)", "resumed" if self.resumed else "started", self.path, self.fingerprint)
        self.cache = CallCache(self.path / "cache.sqlite") if use_cache else None
        self.usage = UsageTracker(self.path / "usage.json")
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
        if self.cache is not None:
            self.cache.close()
        logging.getLogger("dialforge").removeHandler(self._log_handler)
        self._log_handler.close()

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
