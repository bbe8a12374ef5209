"""`dialforge answer`: answer seed questions with any backend, resumably.

The result is a file of first exchanges (user question + assistant answer): the seeds of
the seeded simulators, and the smallest stage on the kernel (`run/kernel.py`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..conversation import Conversation, Message, stable_hash
from ..io.reader import read_texts
from ..llm.client import LLM, run_sync
from ..llm.pool import BackendPool
from ..run.kernel import Job, Stage, StageContext, make_executor, run_stage
from ..run.rundir import RunDir
from .config import AnswerConfig


class AnswerStage(Stage):
    name = "answer"
    output = "conversations.jsonl"

    def __init__(self, cfg: AnswerConfig, questions: list[str]) -> None:
        self.cfg = cfg
        self.questions = questions
        self.concurrency = cfg.concurrency
        self.llm: LLM | None = None

    def plan(self) -> list[Job]:
        a = self.cfg.assistant
        params = a.params.model_dump(mode="json")
        jobs = {stable_hash("answer", q, a.model, params, a.system_prompt): q for q in self.questions}
        return [Job(cid, q) for cid, q in jobs.items()]

    async def open(self, ctx: StageContext) -> None:
        self.llm = ctx.llm(self.cfg.assistant, "answer")

    async def run_job(self, job: Job, ctx: StageContext) -> dict[str, Any]:
        assert self.llm is not None
        comp = await self.llm.complete([{"role": "user", "content": job.data}])
        if not comp.ok:
            return {"id": job.id, "error": comp.error, "question": job.data}
        return Conversation(
            id=job.id,
            messages=[
                Message(role="user", content=job.data),
                Message(
                    role="assistant",
                    content=comp.text,
                    meta={
                        "model": comp.model,
                        "finish_reason": comp.finish_reason,
                        "usage": [comp.usage.prompt_tokens, comp.usage.completion_tokens],
                    },
                ),
            ],
            meta={"source": "answer", "assistant_model": self.cfg.assistant.model},
        ).to_record()


async def answer_async(
    cfg: AnswerConfig,
    out: str | Path,
    *,
    force_new: bool = False,
    use_cache: bool = True,
    progress: bool | None = None,
    pool: BackendPool | None = None,
) -> dict[str, Any]:
    questions: list[str] = []
    for p in cfg.prompts:
        questions.extend(read_texts(p, text_field=cfg.text_field))
    if cfg.limit:
        questions = questions[: cfg.limit]
    models = {"assistant": cfg.assistant.model}
    with RunDir(out, command="answer", config=cfg, models=models, force_new=force_new, use_cache=use_cache) as run:
        res = await run_stage(
            AnswerStage(cfg, questions), run, executor=make_executor(cfg.executor, pool), progress=progress
        )
        s = res.summary
        return {
            "questions": len(questions),
            "answered_now": s["run_now"] - s["failed"],
            "already_done": s["already_done"],
            "failed": s["failed"],
            "total": s["jobs"] - s["failed"],
            "warnings": res.warnings,
        }


def answer(cfg: AnswerConfig, out: str | Path, **kw: Any) -> dict[str, Any]:
    return run_sync(answer_async(cfg, out, **kw))
