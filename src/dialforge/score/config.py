"""Configurations of `dialforge score` and `dialforge mt-bench`: data only (pydantic and other
configs; no reader, client or metric is imported)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..induce.config import DEFAULT_EMBEDDER
from ..llm.config import BackendConfig
from ..markers import INPUT_FILE, OPERATIONAL
from ..run.config import ExecutorConfig


class ScoreConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    self_bleu_sample: int = Field(100, ge=2)
    embedding_sample: int = Field(500, ge=2)
    embedder: str | None = Field(DEFAULT_EMBEDDER, description="None to skip embedding diversity")
    embedding_cache: str | None = Field(
        None, description="embedding cache folder (default: the embedder's, $DIALFORGE_CACHE/embeddings)"
    )
    library: Annotated[str | None, INPUT_FILE] = Field(
        None, description="strategy library, for coverage (strategy mode)"
    )
    judge: BackendConfig | None = None
    seed: int = 0
    concurrency: int = Field(16, ge=1)


class MTBenchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    questions: Annotated[str, INPUT_FILE] = Field(description="MT-Bench questions (JSONL)")
    reference_answers: Annotated[str | None, INPUT_FILE] = Field(
        None, description="reference answers for math and reasoning questions (JSONL)"
    )
    judge_prompts: Annotated[str, INPUT_FILE] = Field(description="FastChat judge prompts (JSONL)")
    model: BackendConfig
    judge: BackendConfig
    mode: Literal["single", "pairwise"] = Field(
        "single", description="single: rate each answer; pairwise: compare with a baseline"
    )
    baseline_answers: Annotated[str | None, INPUT_FILE] = Field(
        None, description="FastChat answer file of the model to compare with"
    )
    max_tokens: int = 1024
    judge_max_tokens: int = Field(
        2048, ge=16, description="judgment length cap (FastChat: 2048; a small local judge is faster at 256)"
    )
    concurrency: Annotated[int, OPERATIONAL] = 32
    executor: Annotated[ExecutorConfig | None, OPERATIONAL] = Field(
        None, description="local (default) or ray: where the jobs run"
    )
