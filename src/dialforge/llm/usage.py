"""Usage accounting per stage and model, persisted so a resumed run adds to it, never re-adds."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from .types import Completion

log = logging.getLogger("dialforge.run")

if TYPE_CHECKING:
    from .cache import CallCache


@dataclass
class UsageCounter:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: int = 0
    cache_hits: int = 0
    failures: int = 0
    latency_s: float = 0.0

    def values(self) -> tuple[int | float, ...]:
        """The counts in field order (`dataclasses.astuple` deep-copies: 10x slower per call)."""
        return (
            self.calls,
            self.prompt_tokens,
            self.completion_tokens,
            self.retries,
            self.cache_hits,
            self.failures,
            self.latency_s,
        )

    def add(self, other: UsageCounter) -> None:
        self.calls += other.calls
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.retries += other.retries
        self.cache_hits += other.cache_hits
        self.failures += other.failures
        self.latency_s += other.latency_s


class UsageTracker:
    """Counts only calls really sent: a cache hit adds to `cache_hits`, not to tokens.

    With a `ledger` (the run's SQLite cache), every call is recorded in the same transaction
    as its cache row, and the counts load from the ledger at start: a run killed at any point
    and resumed counts each request exactly once. `path` (usage.json) is a readable snapshot,
    written atomically on `flush()`; a damaged snapshot is ignored with a warning.
    """

    def __init__(
        self, path: str | Path | None = None, flush_every_s: float = 2.0, ledger: CallCache | None = None
    ) -> None:
        self.path = Path(path) if path else None
        self.ledger = ledger
        self.counters: dict[str, dict[str, UsageCounter]] = {}
        self.stage_wall_s: dict[str, float] = {}
        self._stage_started: dict[str, float] = {}
        self._flush_every_s = flush_every_s
        self._last_flush = time.monotonic()
        snapshot = self._read_snapshot()
        # stage_wall_s: this session's wall time per stage (a resumed run's own time);
        # stage_wall_total_s: summed over every session that worked on the stage
        self.stage_wall_total_s: dict[str, float] = dict(
            snapshot.get("stage_wall_total_s", snapshot.get("stage_wall_s", {}))
        )
        rows = ledger.usage_rows() if ledger is not None else []
        if rows:
            for stage, model, *vals in rows:
                self.counters.setdefault(stage, {})[model] = UsageCounter(*vals)
        else:  # a run directory from before the ledger, or no ledger
            for stage, models in snapshot.get("stages", {}).items():
                self.counters[stage] = {m: UsageCounter(**c) for m, c in models.items()}
                if ledger is not None:
                    for m, c in self.counters[stage].items():
                        ledger.record(stage, c, None, Completion(texts=[], finish_reasons=[], model=m))

    def _read_snapshot(self) -> dict[str, Any]:
        if not (self.path and self.path.exists()):
            return {}
        try:
            data = orjson.loads(self.path.read_bytes())
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            for models in data.get("stages", {}).values():
                for c in models.values():
                    UsageCounter(**c)
            return data
        except (orjson.JSONDecodeError, ValueError, TypeError, AttributeError) as e:
            from ..io.files import aside_path

            aside = aside_path(self.path, "corrupt")
            self.path.rename(aside)
            log.warning("%s is unreadable (%s): moved to %s; counts rebuilt from the ledger", self.path, e, aside.name)
            return {}

    def counter(self, stage: str, model: str) -> UsageCounter:
        return self.counters.setdefault(stage, {}).setdefault(model, UsageCounter())

    def record(self, stage: str, comp: Completion, cache_key: str | None = None) -> None:
        """Count one answer; with a ledger, store it under `cache_key` in the same transaction."""
        if comp.cached:
            d = UsageCounter(cache_hits=1)
        else:
            d = UsageCounter(
                calls=1,
                prompt_tokens=comp.usage.prompt_tokens,
                completion_tokens=comp.usage.completion_tokens,
                retries=comp.retries,
                failures=int(comp.error is not None),
                latency_s=comp.latency_s,
            )
        if self.ledger is not None:
            self.ledger.record(stage, d, cache_key, comp)
        self.counter(stage, comp.model).add(d)
        if self.path and time.monotonic() - self._last_flush > self._flush_every_s:
            self.flush()

    def start_stage(self, stage: str) -> None:
        self._stage_started[stage] = time.monotonic()

    def end_stage(self, stage: str) -> None:
        t0 = self._stage_started.pop(stage, None)
        if t0 is not None:
            elapsed = time.monotonic() - t0
            self.stage_wall_s[stage] = self.stage_wall_s.get(stage, 0.0) + elapsed
            self.stage_wall_total_s[stage] = self.stage_wall_total_s.get(stage, 0.0) + elapsed
        self.flush()

    def totals(self) -> dict[str, UsageCounter]:
        """Per model, summed over stages."""
        out: dict[str, UsageCounter] = {}
        for models in self.counters.values():
            for m, c in models.items():
                out.setdefault(m, UsageCounter()).add(c)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "stages": {s: {m: asdict(c) for m, c in ms.items()} for s, ms in self.counters.items()},
            "totals": {m: asdict(c) for m, c in self.totals().items()},
            "stage_wall_s": self.stage_wall_s,
            "stage_wall_total_s": self.stage_wall_total_s,
        }

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if self.path:
            from ..io.files import atomic_write_bytes

            atomic_write_bytes(self.path, orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2))

    def summary_line(self) -> str:
        t = self.totals()
        calls = sum(c.calls for c in t.values())
        hits = sum(c.cache_hits for c in t.values())
        toks = sum(c.prompt_tokens + c.completion_tokens for c in t.values())
        fails = sum(c.failures for c in t.values())
        return f"calls {calls} | cache hits {hits} | tokens {toks} | failures {fails}"
