"""The question-quality judge as a stage on the kernel.

Judgments live in their own run directory beside the data (`RUN_DIR/judge/` for a run
directory, `FILE.judge/` for a file): its own lock, cache, usage and manifest, so judging a
finished simulation never rewrites that run's records, and a re-run judges only what is new
or failed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..conversation import Conversation, stable_hash
from ..llm.client import LLM
from ..llm.config import BackendConfig
from ..run.kernel import Job, Stage, StageContext, run_stage
from ..run.rundir import RunDir
from .judge import judge_question_quality


class JudgeStage(Stage):
    name = "score.judge"
    output = "judgments.jsonl"

    def __init__(self, judge: BackendConfig, convs: list[Conversation], concurrency: int) -> None:
        self.judge_cfg = judge
        self.convs = convs
        self.concurrency = concurrency
        self.llm: LLM | None = None

    def plan(self) -> list[Job]:
        j = self.judge_cfg
        key = (j.model, j.params.model_dump(mode="json"))
        unique = {c.id: c for c in self.convs}  # a repeated id is judged once
        return [Job(stable_hash("judge", cid, key), c) for cid, c in unique.items()]

    async def open(self, ctx: StageContext) -> None:
        self.llm = ctx.llm(self.judge_cfg, self.name)

    async def run_job(self, job: Job, ctx: StageContext) -> dict[str, Any]:
        assert self.llm is not None
        verdict = await judge_question_quality(self.llm, job.data)
        rec: dict[str, Any] = {"id": job.id, "conversation_id": job.data.id, "judge": verdict}
        err = str(verdict.get("error") or "")
        if "request failed" in err:  # the judge was not reached: retried by the next run
            rec["error"] = err
        return rec


def judge_dir(path: str | Path) -> Path:
    p = Path(path)
    return p / "judge" if p.is_dir() else p.with_name(p.name + ".judge")


async def judge_conversations(
    convs: list[Conversation], judge: BackendConfig, out: str | Path, *, concurrency: int = 16
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Judgments by conversation id, and the stage's health warnings. Incremental like every
    stage: the judge folder's config is the judge alone (not the conversations), so the same
    judge resumes it and judges only conversations it has not judged (appended ones, failed
    ones); another judge moves the old folder aside (nothing is lost)."""
    with RunDir(out, command="score judge", config=judge, models={"judge": judge.model}, force_new=True) as run:
        res = await run_stage(JudgeStage(judge, convs, concurrency), run, progress=False)
    return {r["conversation_id"]: r["judge"] for r in res.records}, res.warnings
