"""`dialforge answer`: answer seed questions with any backend, resumably.

The result is a file of first exchanges (user question + assistant answer): the seeds of
the seeded simulators, and the smallest end-to-end use of run directory, cache and usage.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .conversation import Conversation, Message, stable_hash
from .io.reader import read_texts
from .llm.client import LLM
from .llm.config import BackendConfig, make_backend
from .progress import stage_progress
from .run.rundir import RunDir

log = logging.getLogger("dialforge.answer")


class AnswerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompts: list[str] = Field(min_length=1, description="files of seed questions")
    assistant: BackendConfig
    limit: int | None = Field(None, ge=1, description="answer only the first N questions")
    concurrency: int = Field(64, ge=1)


async def answer_async(
    cfg: AnswerConfig, out: str | Path, *, force_new: bool = False, use_cache: bool = True, progress: bool | None = None
) -> dict[str, Any]:
    questions: list[str] = []
    for p in cfg.prompts:
        questions.extend(read_texts(p))
    if cfg.limit:
        questions = questions[: cfg.limit]
    with RunDir(
        out,
        command="answer",
        config=cfg,
        models={"assistant": cfg.assistant.model},
        force_new=force_new,
        use_cache=use_cache,
    ) as run:
        store = run.store("conversations.jsonl")
        llm = LLM(
            make_backend(cfg.assistant),
            cache=run.cache,
            usage=run.usage,
            stage="answer",
            params=cfg.assistant.params,
            system_prompt=cfg.assistant.system_prompt,
        )
        todo = []
        for q in questions:
            cid = stable_hash(
                "answer",
                q,
                cfg.assistant.model,
                cfg.assistant.params.model_dump(mode="json"),
                cfg.assistant.system_prompt,
            )
            if cid not in store:
                todo.append((cid, q))
        failed = 0
        sem = asyncio.Semaphore(cfg.concurrency)
        run.usage.start_stage("answer")
        with stage_progress("answer", len(todo), run.usage, progress) as bar:

            async def one(cid: str, q: str) -> None:
                nonlocal failed
                async with sem:
                    comp = await llm.complete([{"role": "user", "content": q}])
                if comp.ok:
                    conv = Conversation(
                        id=cid,
                        messages=[
                            Message(role="user", content=q),
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
                        meta={"source": "answer", "assistant_model": cfg.assistant.model},
                    )
                    store.append(conv.to_record())
                else:
                    failed += 1
                    log.warning("question %s failed: %s", cid, comp.error)
                bar.advance()

            await asyncio.gather(*(one(c, q) for c, q in todo))
        run.usage.end_stage("answer")
        await llm.aclose()
        summary = {
            "questions": len(questions),
            "answered_now": len(todo) - failed,
            "already_done": len(questions) - len(todo),
            "failed": failed,
            "total": len(store),
        }
        run.stage_done("answer", **summary)
        return summary


def answer(cfg: AnswerConfig, out: str | Path, **kw: Any) -> dict[str, Any]:
    return asyncio.run(answer_async(cfg, out, **kw))
