"""Configuration of `dialforge induce`: data only (pydantic and other configs; no reader,
embedder or client is imported)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ..llm.config import BackendConfig
from ..markers import INPUT_FILE, OPERATIONAL
from ..run.config import ExecutorConfig

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"

# The published keyword list (English part), plus the content-filter placeholder.
REFUSAL_MARKERS = (
    "Omitted content due to a flag from our content filters",
    "sorry",
    "Sorry",
    "apologize",
    "I cannot",
    "language model",
    "UNKNOWN ERROR",
)


class FilterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    max_user_similarity: float = Field(
        0.8, ge=0, le=1, description="drop at Indel ratio (python-Levenshtein ratio, as published) >= this"
    )
    refusal_markers: list[str] = Field(default_factory=lambda: list(REFUSAL_MARKERS))


"""The sentence embedder induction and the realism card use unless told otherwise."""


def _read_format(name: str) -> str:
    from ..io.registry import check_read_format  # the format registry, read when a config is validated

    return check_read_format(name)


ReadFormat = Annotated[str, AfterValidator(_read_format)]
"""A config field naming the reader of a file (`io.registry.ReadFormat`, checked the same way
without importing the readers with the config)."""


class InduceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dialogues: Annotated[list[str], INPUT_FILE] = Field(min_length=1, description="real dialogue files (any format)")
    format: ReadFormat = Field("auto", description="input format, or auto (by shape); `dialforge formats` lists them")
    on_error: Literal["fail", "skip"] = Field("fail", description="fail on the first bad record, or skip and count")
    max_dialogues: int | None = Field(None, ge=1, description="use only the first N dialogues")
    filter: FilterConfig = FilterConfig()
    include_first_turn: bool = False
    model: BackendConfig
    embedder: str = Field(DEFAULT_EMBEDDER, description="sentence-transformers model id or path")
    threshold: float = Field(0.5, gt=0, le=1, description="cosine threshold for clustering")
    method: Literal["butina", "components", "leader"] = Field(
        "butina",
        description="clustering: butina (sphere exclusion over exact neighbours), components (single "
        "linkage), leader (the published greedy rule; depends on input order)",
    )
    knn: int = Field(64, ge=2, description="neighbours searched per strategy (bounds memory: n x knn)")
    abstract_sample: int = Field(20, ge=1, description="members shown to the LLM per cluster")
    singletons: Literal["keep", "merge"] = "keep"
    examples_per_strategy: int = Field(5, ge=1)
    contexts_per_strategy: int = Field(
        32, ge=0, description="answers kept per strategy for the provenance ranker (those that preceded its turns)"
    )
    seed: int = 0
    concurrency: Annotated[int, OPERATIONAL] = Field(64, ge=1, description="LLM requests in flight at once")
    executor: Annotated[ExecutorConfig | None, OPERATIONAL] = Field(
        None, description="local (default) or ray: where the extraction and abstraction jobs run"
    )
