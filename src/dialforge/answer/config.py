"""Configuration of `dialforge answer`: data only (pydantic and other configs)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from ..llm.config import BackendConfig
from ..markers import INPUT_FILE, OPERATIONAL
from ..run.config import ExecutorConfig


class AnswerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompts: Annotated[list[str], INPUT_FILE] = Field(min_length=1, description="files of seed questions")
    text_field: str | None = Field(None, description="field of the question records holding the prompt (dotted)")
    assistant: BackendConfig
    limit: int | None = Field(None, ge=1, description="answer only the first N questions")
    concurrency: Annotated[int, OPERATIONAL] = Field(64, ge=1, description="questions in flight at once")
    executor: Annotated[ExecutorConfig | None, OPERATIONAL] = Field(
        None, description="local (default) or ray: where the jobs run"
    )
