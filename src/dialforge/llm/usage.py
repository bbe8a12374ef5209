"""Usage accounting per stage and model, persisted so a resumed run adds to it, never re-adds."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from .types import Completion


@dataclass
class UsageCounter:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: int = 0
    cache_hits: int = 0
    failures: int = 0
    latency_s: float = 0.0


class UsageTracker:
    """Counts only calls really sent: a cache hit adds to `cache_hits`, not to tokens.

    With a `path`, the totals load from it at start and are written back (atomically) on
    `flush()`; a resumed run therefore continues the counts instead of re-adding them.
    """

    def __init__(self, path: str | Path | None = None, flush_every_s: float = 2.0) -> None:
        self.path = Path(path) if path else None
        self.counters: dict[str, dict[str, UsageCounter]] = {}
        self.stage_wall_s: dict[str, float] = {}
        self._stage_started: dict[str, float] = {}
        self._flush_every_s = flush_every_s
        self._last_flush = time.monotonic()
        if self.path and self.path.exists():
            data = orjson.loads(self.path.read_bytes())
            for stage, models in data.get("stages", {}).items():
                self.counters[stage] = {m: UsageCounter(**c) for m, c in models.items()}
            self.stage_wall_s = dict(data.get("stage_wall_s", {}))

    def counter(self, stage: str, model: str) -> UsageCounter:
        return self.counters.setdefault(stage, {}).setdefault(model, UsageCounter())

    def record(self, stage: str, comp: Completion) -> None:
        c = self.counter(stage, comp.model)
        if comp.cached:
            c.cache_hits += 1
        else:
            c.calls += 1
            c.prompt_tokens += comp.usage.prompt_tokens
            c.completion_tokens += comp.usage.completion_tokens
            c.retries += comp.retries
            c.latency_s += comp.latency_s
            if comp.error is not None:
                c.failures += 1
        if self.path and time.monotonic() - self._last_flush > self._flush_every_s:
            self.flush()

    def start_stage(self, stage: str) -> None:
        self._stage_started[stage] = time.monotonic()

    def end_stage(self, stage: str) -> None:
        t0 = self._stage_started.pop(stage, None)
        if t0 is not None:
            self.stage_wall_s[stage] = self.stage_wall_s.get(stage, 0.0) + time.monotonic() - t0
        self.flush()

    def totals(self) -> dict[str, UsageCounter]:
        """Per model, summed over stages."""
        out: dict[str, UsageCounter] = {}
        for models in self.counters.values():
            for m, c in models.items():
                t = out.setdefault(m, UsageCounter())
                for k, v in asdict(c).items():
                    setattr(t, k, getattr(t, k) + v)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "stages": {s: {m: asdict(c) for m, c in ms.items()} for s, ms in self.counters.items()},
            "totals": {m: asdict(c) for m, c in self.totals().items()},
            "stage_wall_s": self.stage_wall_s,
        }

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if self.path:
            from ..io.reader import atomic_write_bytes

            atomic_write_bytes(self.path, orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2))

    def summary_line(self) -> str:
        t = self.totals()
        calls = sum(c.calls for c in t.values())
        hits = sum(c.cache_hits for c in t.values())
        toks = sum(c.prompt_tokens + c.completion_tokens for c in t.values())
        fails = sum(c.failures for c in t.values())
        return f"calls {calls} | cache hits {hits} | tokens {toks} | failures {fails}"
