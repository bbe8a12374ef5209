"""Self-talk (Ulmer et al. 2024): a client LLM with a persona and an intent talks to an
agent LLM told its current workflow step; a step tracker follows the client's answers
through the graph; the ROUGE-L subgoal tracker scores each dialogue; filters keep the best;
the agent is trained on them (loss on agent turns) and the loop runs again.

Layout: RUN_DIR/loop-<i>/dialogues.jsonl, kept.jsonl, agent/ (the trained agent).
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

from ..conversation import Conversation, stable_hash
from ..errors import DialforgeError
from ..io.intents import intents_for
from ..io.output import write_conversations
from ..llm.client import LLM, run_sync
from ..llm.config import BackendConfig
from ..llm.pool import BackendPool
from ..llm.types import SamplingParams
from ..run.health import kept_warning
from ..run.kernel import Job, Stage, StageContext, make_executor, run_stage
from ..run.rundir import RunDir
from ..simulate.engine import Engine
from ..simulate.run import without_timings
from .agent import selftalk_engine, selftalk_seed
from .config import FilterSpec, SelfTalkConfig
from .model import Workflow, load_workflows
from .tracker import rouge_l

log = logging.getLogger("dialforge.selftalk")

PUBLISHED_PARAMS = SamplingParams(temperature=0.8, top_p=0.95, top_k=50, max_tokens=100)


def _star_scenarios(path: str | Path) -> list[dict[str, Any]]:
    """STAR scenarios of single-task dialogues."""
    from ..io._records import iter_records

    out = []
    for d, _, _ in iter_records(Path(path)):
        if isinstance(d, Exception):
            raise d
        if len(d["Scenario"]["WizardCapabilities"]) == 1:
            out.append(d["Scenario"])
    return out


def star_intents(path: str | Path) -> dict[str, list[str]]:
    """STAR's written user instructions (Scenario.UserTask) by task, single-task dialogues only."""
    out: dict[str, list[str]] = {}
    for sc in _star_scenarios(path):
        if sc.get("UserTask"):
            out.setdefault(sc["WizardCapabilities"][0]["Task"], []).append(sc["UserTask"])
    return out


def _clean_wizard_task(text: str) -> str:
    """A STAR wizard task as an agent's task: no pointers to the MTurk flow charts or
    tutorial videos, no per-dialogue facts (they belong to one user's task)."""
    t = re.sub(r"\([^)]*https?://[^)]*\)", "", text)
    t = re.sub(r"Some facts you should be aware of:.*", "", t, flags=re.S)
    t = re.sub(r"Follow the flow charts? and help", "Help", t)
    return re.sub(r"\s+", " ", t).strip()


def star_agent_tasks(path: str | Path) -> dict[str, str]:
    """The most common (cleaned) STAR wizard task per task: the agent's task wording."""
    counts: dict[str, Counter[str]] = {}
    for sc in _star_scenarios(path):
        if sc.get("WizardTask"):
            counts.setdefault(sc["WizardCapabilities"][0]["Task"], Counter())[_clean_wizard_task(sc["WizardTask"])] += 1
    return {task: c.most_common(1)[0][0] for task, c in counts.items()}


def with_star_scenarios(cfg: SelfTalkConfig) -> SelfTalkConfig:
    """The config with STAR's user tasks as intents and wizard tasks as agent tasks (the
    config's own entries win)."""
    if not cfg.star_dialogues:
        return cfg
    return cfg.model_copy(
        update={
            "intents": {**star_intents(cfg.star_dialogues), **cfg.intents},
            "agent_tasks": {**star_agent_tasks(cfg.star_dialogues), **cfg.agent_tasks},
        }
    )


def agent_diversity(convs: list[Conversation], max_pairs: int = 25, seed: int = 0) -> dict[str, float]:
    """Per agent character: 1 - mean pairwise ROUGE-L between dialogues (agent turns), over
    at most `max_pairs` random pairs, as in the Self-Talk paper."""
    by_agent: dict[str, list[str]] = {}
    for c in convs:
        text = " ".join(m.content for m in c.messages if m.role == "assistant")
        by_agent.setdefault(str(c.meta.get("workflow_agent", c.meta.get("workflow"))), []).append(text)
    out = {}
    rng = random.Random(seed)
    for agent, texts in sorted(by_agent.items()):
        pairs = [(i, j) for i in range(len(texts)) for j in range(i + 1, len(texts))]
        if not pairs:
            continue
        pairs = rng.sample(pairs, min(max_pairs, len(pairs)))
        out[agent] = round(1 - sum(rouge_l(texts[i], texts[j]) for i, j in pairs) / len(pairs), 4)
    return out


def apply_filter(convs: list[Conversation], spec: FilterSpec) -> list[Conversation]:
    """The published filters: abs_subgoals (depth >= k), top_percent (best p by relative
    depth, then depth), ended (reached an ending), random (p, seeded), none. They rank by
    each dialogue's `workflow_eval`, made by the tracker `SelfTalkConfig.tracker_order`
    names (default `any`; `graph` is the paper's walk), recorded as `workflow_eval.order`."""
    ev = {c.id: c.meta.get("workflow_eval", {}) for c in convs}
    if spec.kind == "none":
        return list(convs)
    if spec.kind == "abs_subgoals":
        return [c for c in convs if ev[c.id].get("depth", 0) >= spec.k]
    if spec.kind == "ended":
        return [c for c in convs if ev[c.id].get("success")]
    n = max(1, round(len(convs) * spec.p)) if convs else 0
    if spec.kind == "random":
        return random.Random(spec.seed).sample(list(convs), n)
    ranked = sorted(convs, key=lambda c: (-ev[c.id].get("relative_depth", 0), -ev[c.id].get("depth", 0), c.id))
    return ranked[:n]


class SelfTalkLoop(Stage):
    """One self-talk loop as a kernel stage: one job per (workflow, sample); the engine plays
    the client simulator against the workflow agent. Roles on one endpoint share one backend
    (an in-process model loads once per loop)."""

    def __init__(self, cfg: SelfTalkConfig, workflows: list[Workflow], loop: int, agent_cfg: BackendConfig) -> None:
        self.cfg = cfg
        self.workflows = workflows
        self.loop = loop
        self.agent_cfg = agent_cfg
        self.name = f"selftalk.{loop}"
        self.output = f"loop-{loop}/dialogues.jsonl"
        self.concurrency = cfg.concurrency
        self.engine: Engine | None = None

    def plan(self) -> list[Job]:
        return [
            Job(stable_hash("selftalk", self.loop, wf.name, k, self.agent_cfg.model), (wf, k))
            for wf in self.workflows
            for k in range(self.cfg.dialogues_per_workflow)
        ]

    async def open(self, ctx: StageContext) -> None:
        cfg, loop = self.cfg, self.loop

        def greedy(backend: BackendConfig | None, stage: str, max_tokens: int) -> LLM | None:
            """A deterministic helper role (option picker, end check, consistency judge)."""
            if backend is None:
                return None
            params = SamplingParams(temperature=0.0, max_tokens=max_tokens)
            return ctx.llm(backend, f"selftalk.{stage}", params=params, system_prompt="")

        client = ctx.llm(
            cfg.client, f"selftalk.client.{loop}", params=cfg.client.params_or(PUBLISHED_PARAMS), system_prompt=""
        )
        agent = ctx.llm(
            self.agent_cfg,
            f"selftalk.agent.{loop}",
            params=self.agent_cfg.params_or(PUBLISHED_PARAMS),
            system_prompt="",
        )
        picker = greedy(cfg.picker_model or cfg.client, f"picker.{loop}", 32) if cfg.picker != "rouge" else None
        end_llm = greedy(cfg.end_check, f"end_check.{loop}", 16)
        consistency_llm = greedy(cfg.consistency_judge, f"consistency.{loop}", 16)
        self.engine = selftalk_engine(cfg, client, agent, picker, end_llm, consistency_llm)

    async def run_job(self, job: Job, ctx: StageContext) -> dict[str, Any]:
        assert self.engine is not None
        wf, k = job.data
        conv = await self.engine.run_one(job.id, selftalk_seed(self.cfg, wf, job.id), k)
        return without_timings(conv.to_record())

    def failure(self, job: Job, error: str) -> dict[str, Any]:
        wf, k = job.data
        meta = {"mode": "selftalk", "workflow": wf.name, "sample_index": k, "termination_reason": "error"}
        return Conversation(id=job.id, messages=[], meta={**meta, "error": error}).to_record()


def _loop_info(loop: int, agent: str, convs: list[Conversation], kept: list[Conversation]) -> dict[str, Any]:
    evs = [c.meta["workflow_eval"] for c in convs if isinstance(c.meta.get("workflow_eval"), dict)]

    def mean(key: str) -> float | None:
        return round(sum(float(e.get(key) or 0) for e in evs) / len(evs), 3) if evs else None

    info = {
        "loop": loop,
        "agent": agent,
        "dialogues": len(convs),
        "kept": len(kept),
        "depth_mean": mean("depth"),
        "relative_depth_mean": mean("relative_depth"),
        "success_rate": mean("success"),
        "tracker_order": next((e["order"] for e in evs if e.get("order")), None),  # what the filter ranked by
        "agent_diversity": agent_diversity(convs),
    }
    cc = [e["character_consistency"] for e in evs if e.get("character_consistency") is not None]
    if cc:
        info["character_consistency_mean"] = round(sum(cc) / len(cc), 3)
    return info


async def _train_agent(cfg: SelfTalkConfig, agent_cfg: BackendConfig, loop_dir: Path) -> dict[str, Any]:
    if agent_cfg.kind != "transformers":
        raise DialforgeError("self-talk training needs an in-process agent (`agent.model` a local path)")
    from ..train import TrainConfig, train

    tcfg = TrainConfig(
        preset="selftalk",  # the paper's schedule (inverse sqrt) and weight decay; r and lr from cfg
        kind="chat",
        data=[str(loop_dir / "kept.jsonl")],
        model=agent_cfg.model,
        out=str(loop_dir / "agent"),
        roles=["assistant"] if cfg.loss_on == "agent" else ["user", "assistant"],
        epochs=cfg.train_epochs,
        max_steps=cfg.train_max_steps,
        learning_rate=cfg.train_lr,
        lora_r=cfg.lora_r,
        lora_alpha=cfg.lora_r * 2,
        batch_size=4,
        max_length=1024,
    )
    result: dict[str, Any] = await asyncio.to_thread(train, tcfg)
    return result


async def selftalk_async(
    cfg: SelfTalkConfig,
    out: str | Path,
    *,
    force_new: bool = False,
    progress: bool | None = None,
    pool: BackendPool | None = None,
) -> dict[str, Any]:
    workflows = load_workflows(cfg.workflows)
    cfg = with_star_scenarios(cfg)
    if cfg.intents_file:
        names = [w.name for w in workflows]
        cfg = cfg.model_copy(update={"intents": {**intents_for(cfg.intents_file, names), **cfg.intents}})
    out = Path(out)
    summary: dict[str, Any] = {"loops": [], "warnings": []}
    models = {"client": cfg.client.model, "agent": cfg.agent.model}
    with RunDir(out, command="selftalk", config=cfg, models=models, force_new=force_new) as run:
        agent_cfg = cfg.agent
        for loop in range(cfg.loops):
            loop_dir = out / f"loop-{loop}"
            # without a shared pool each loop gets its own: the next loop's agent is the trained one
            stage = SelfTalkLoop(cfg, workflows, loop, agent_cfg)
            res = await run_stage(stage, run, executor=make_executor(cfg.executor, pool), progress=progress)
            convs = [Conversation.model_validate(r) for r in res.records if not r.get("meta", {}).get("error")]
            kept = apply_filter(convs, cfg.filter)
            write_conversations(kept, loop_dir / "kept.jsonl")
            info = _loop_info(loop, agent_cfg.model, convs, kept)
            warnings = res.warnings + kept_warning(f"selftalk loop {loop} filter", len(convs), len(kept))
            if convs and not any((c.meta.get("workflow_eval") or {}).get("depth") for c in convs):
                warnings.append(
                    f"selftalk loop {loop}: 0/{len(convs)} dialogues completed any workflow step "
                    "(subgoal depth 0): the agent's turns match none of its steps"
                )
            summary["warnings"] += warnings
            if loop + 1 < cfg.loops:
                if not kept:
                    log.warning("loop %d kept no dialogue; stopping before training", loop)
                    info["stopped"] = "no dialogue kept"
                    summary["loops"].append(info)
                    break
                tsum = await _train_agent(cfg, agent_cfg, loop_dir)
                info["train"] = {k: tsum[k] for k in ("examples", "steps", "train_loss")}
                agent_cfg = agent_cfg.model_copy(update={"model": tsum["final"]})
            summary["loops"].append(info)
            run.stage_done(f"loop-{loop}", **info, warnings=warnings)
    return summary


def selftalk(cfg: SelfTalkConfig, out: str | Path, **kw: Any) -> dict[str, Any]:
    return run_sync(selftalk_async(cfg, out, **kw))
