"""`dialforge simulate` as a stage on the kernel: one job per (seed, sample), the engine plays
each conversation; the executor owns resume, retries of errored conversations, order and
health."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from ..conversation import Conversation, Message
from ..llm.client import run_sync
from ..llm.pool import BackendPool
from ..run.kernel import Job, Records, Stage, StageContext, make_executor, run_stage
from ..run.rundir import RunDir
from .config import SimulateConfig
from .engine import Engine, Seed, conversation_id, load_seeds, simulate_key
from .modes import make_simulator

# per-request timings differ between identical runs: they live in usage.json, not in records
_TIMING_KEYS = ("wall_s", "latency_s")


def without_timings(rec: dict[str, Any]) -> dict[str, Any]:
    for k in _TIMING_KEYS:
        rec.get("meta", {}).pop(k, None)
    for m in rec.get("messages", []):
        for k in _TIMING_KEYS:
            (m.get("meta") or {}).pop(k, None)
    return rec


class SimulateStage(Stage):
    name = "simulate"
    output = "conversations.jsonl"

    def __init__(self, cfg: SimulateConfig, seeds: list[Seed]) -> None:
        self.cfg = cfg
        self.seeds = seeds
        self.concurrency = cfg.concurrency
        self.engine: Engine | None = None

    def plan(self) -> list[Job]:
        key = simulate_key(self.cfg)
        return [
            Job(conversation_id(self.cfg, s, k, key), (s, k))
            for s in self.seeds
            for k in range(self.cfg.samples_per_seed)
        ]

    async def open(self, ctx: StageContext) -> None:
        cfg = self.cfg
        user = ctx.llm(cfg.user, "simulate.user", system_prompt="")
        assistant = ctx.llm(cfg.assistant, "simulate.assistant")
        judge = ctx.llm(cfg.strategy.judge, "simulate.judge") if cfg.strategy and cfg.strategy.judge else None
        if cfg.strategy and cfg.strategy.judge is None:  # IDEAS QC: the assistant's model judges
            judge = assistant.for_stage("simulate.judge")
        self.engine = Engine(cfg, make_simulator(cfg, user, judge), assistant)

    async def run_job(self, job: Job, ctx: StageContext) -> dict[str, Any]:
        assert self.engine is not None
        seed, k = job.data
        conv = await self.engine.run_one(job.id, seed, k)
        return without_timings(conv.to_record())

    def failure(self, job: Job, error: str) -> dict[str, Any]:
        seed, k = job.data
        return Conversation(
            id=job.id,
            messages=[Message(**m) for m in seed.messages],
            meta={
                "mode": self.cfg.mode,
                "seed_id": seed.id,
                "sample_index": k,
                "termination_reason": "error",
                "error": error,
            },
        ).to_record()

    def summarise(self, records: Records) -> dict[str, Any]:
        reasons = Counter(str(r.get("meta", {}).get("termination_reason", "?")) for r in records)
        return {"conversations": len(records), "seeds": len(self.seeds), "termination_reasons": dict(reasons)}


async def simulate_async(
    cfg: SimulateConfig,
    out: str | Path,
    *,
    force_new: bool = False,
    use_cache: bool = True,
    progress: bool | None = None,
    pool: BackendPool | None = None,
) -> dict[str, Any]:
    seeds = load_seeds(cfg.seeds)
    models = {"user": cfg.user.model, "assistant": cfg.assistant.model}
    if cfg.strategy and cfg.strategy.judge:
        models["judge"] = cfg.strategy.judge.model
    elif cfg.strategy:  # IDEAS QC: the assistant's model judges unless `judge: false`
        models["judge"] = "off (judge: false)" if cfg.strategy.judge is False else cfg.assistant.model
    with RunDir(out, command="simulate", config=cfg, models=models, force_new=force_new, use_cache=use_cache) as run:
        res = await run_stage(
            SimulateStage(cfg, seeds), run, executor=make_executor(cfg.executor, pool), progress=progress
        )
        s = res.summary
        return {
            "conversations": s["conversations"],
            "new": s["run_now"],
            "retried": s["retried"],
            "seeds": s["seeds"],
            "termination_reasons": s["termination_reasons"],
            "output": s["output"],
            "warnings": res.warnings,
        }


def simulate(cfg: SimulateConfig, out: str | Path, **kw: Any) -> dict[str, Any]:
    return run_sync(simulate_async(cfg, out, **kw))
