"""Induction's two LLM stages on the stage kernel (`run/kernel.py`): extraction (one job per
distinct user turn) and abstraction (one job per cluster). The kernel gives them what every
stage has: the run lock, skip-stored, retry-failed on a re-run, plan-order output, usage,
health warnings, and any executor (`--executor ray` included).
"""

from __future__ import annotations

import random
from typing import Any

from pydantic import BaseModel, Field

from ..conversation import stable_hash
from ..llm.client import LLM
from ..llm.config import BackendConfig
from ..llm.types import SamplingParams
from ..run.kernel import Job, Records, Stage, StageContext
from .extract import ExtractedStrategy, clean_strategy, degenerate_strategy, extraction_messages

# The published abstraction prompt gives the model a definition of a high-level strategy
# (reference/ideas.md §3.2); this is ours, in that spirit.
ABSTRACT_SYSTEM = (
    "You generalise instruction strategies. A high-level instructional strategy is a general "
    "principle for posing the next instruction to an AI assistant thoughtfully, purposefully and "
    "strategically: to get the information one wants, to move the dialogue on, to provoke deeper "
    "thinking or to draw the assistant out. It is reusable in any conversation, free of any topic, "
    "name or detail, and it says how to pose the next instruction (for example 'Ask for specific "
    "information to clarify details', 'Explore and define boundaries, constraints and contexts'). "
    "Each strategy you are given is a specialisation of one such principle. Write the one "
    "high-level strategy (a short phrase, at most 15 words) that they all specialise. Answer in "
    "JSON with the key strategy."
)
# extraction and abstraction are deterministic unless the config sets sampling
DEFAULT_PARAMS = SamplingParams(temperature=0.0, max_tokens=160)


class HighLevelStrategy(BaseModel):
    strategy: str = Field(description="one high-level strategy phrase covering all the examples")


class ExtractStage(Stage):
    """One job per distinct (history, instruction) unit; the record is the unit annotated with
    its strategy (IDEAS's training shape), or the unit's id with an `error` (retried next run)."""

    name = "extract"
    output = "extracted.jsonl"

    def __init__(self, model: BackendConfig, units: list[dict[str, Any]], concurrency: int) -> None:
        self.model = model
        self.units = units
        self.concurrency = concurrency
        self.llm: LLM | None = None

    def plan(self) -> list[Job]:
        return [Job(u["id"], u) for u in self.units]

    async def open(self, ctx: StageContext) -> None:
        self.llm = ctx.llm(self.model, "extract", params=self.model.params_or(DEFAULT_PARAMS))

    async def run_job(self, job: Job, ctx: StageContext) -> dict[str, Any]:
        assert self.llm is not None
        u = job.data
        res = await self.llm.structured(extraction_messages(u), ExtractedStrategy, sample_index=job.attempt)
        strategy = clean_strategy(res.value.strategy) if res.value else ""
        bad = degenerate_strategy(strategy) if strategy else None
        if res.value and strategy and bad is None:
            return {**u, "strategy": strategy, "analysis": res.value.analysis.strip()}
        if res.value is not None:  # an answer, not a failure: kept (never re-asked, so a re-run changes nothing)
            return {"id": job.id, "degenerate": f"{bad or 'empty'}: {strategy[:80]!r}", "raw": res.raw}
        return {"id": job.id, "error": res.error or "empty strategy", "raw": res.raw}

    def summarise(self, records: Records) -> dict[str, Any]:
        return {
            "extracted": sum(1 for r in records if "strategy" in r),
            "degenerate": sum(1 for r in records if "degenerate" in r),
        }


def abstraction_sample(texts: list[str], size: int, seed: int, key: str) -> list[str]:
    """The members shown to the LLM: the most frequent half, the rest drawn at random (a
    generator per cluster, so one cluster's draw never depends on the others)."""
    sample = texts[: size // 2]
    rest = texts[len(sample) :]
    return sample + random.Random(stable_hash(seed, key)).sample(rest, min(len(rest), size - len(sample)))


class AbstractStage(Stage):
    """One job per cluster (id = the strategy id); the record holds the high-level text, or
    an `error` when the LLM gave none (the library then uses the most frequent member and a
    re-run asks again)."""

    name = "abstract"
    output = "abstracted.jsonl"

    def __init__(self, model: BackendConfig, samples: dict[str, list[str]], concurrency: int) -> None:
        self.model = model
        self.samples = samples  # strategy id -> member texts to show
        self.concurrency = concurrency
        self.llm: LLM | None = None

    def plan(self) -> list[Job]:
        return [Job(sid, texts) for sid, texts in self.samples.items()]

    async def open(self, ctx: StageContext) -> None:
        self.llm = ctx.llm(self.model, "abstract", params=self.model.params_or(DEFAULT_PARAMS))

    async def run_job(self, job: Job, ctx: StageContext) -> dict[str, Any]:
        assert self.llm is not None
        listing = "\n".join(f"- {t}" for t in job.data)
        res = await self.llm.structured(
            [{"role": "system", "content": ABSTRACT_SYSTEM}, {"role": "user", "content": f"Strategies:\n{listing}"}],
            HighLevelStrategy,
            sample_index=job.attempt,
        )
        text = clean_strategy(res.value.strategy) if res.value else ""
        bad = degenerate_strategy(text) if text else None
        if text and bad is None:
            return {"id": job.id, "text": text}
        if res.value is not None:  # kept, never re-asked: the library uses the cluster's most frequent member
            return {"id": job.id, "degenerate": f"{bad or 'empty'}: {text[:80]!r}", "raw": res.raw}
        return {"id": job.id, "error": res.error or "empty strategy", "raw": res.raw}

    def summarise(self, records: Records) -> dict[str, Any]:
        return {
            "abstracted": sum(1 for r in records if "text" in r),
            "degenerate": sum(1 for r in records if "degenerate" in r),
        }
