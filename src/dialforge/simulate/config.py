"""Configuration of `dialforge simulate`: one class for CLI, YAML and Python."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from ..llm.config import BackendConfig
from ..markers import FINGERPRINT_IF_SET, INPUT_FILE, OPERATIONAL
from ..run.config import ExecutorConfig
from .modes import get_mode, mode_names
from .stops import GOODBYES


class SeedConfig(BaseModel):
    """Where conversations start. `questions`: the seed is the first user turn. `exchanges`:
    the first user+assistant exchange of each conversation in the files. `free`: this many
    conversations that the simulator opens itself."""

    model_config = ConfigDict(extra="forbid")

    questions: Annotated[list[str], INPUT_FILE] = Field(default_factory=list, description="files of seed questions")
    exchanges: Annotated[list[str], INPUT_FILE] = Field(
        default_factory=list, description="dialogue files whose first exchanges seed conversations"
    )
    free: int = Field(0, ge=0)
    limit: int | None = Field(None, ge=1, description="use only the first N seeds from files")
    text_field: str | None = Field(None, description="field of the question records holding the prompt (dotted)")
    on_error: Literal["fail", "skip"] = Field("fail", description="skip bad question records (counted) or stop")


class StopConfig(BaseModel):
    """The stop rules every self-play mode shares (simulate/stops.py); modes differ only in
    these values."""

    model_config = ConfigDict(extra="forbid")

    goodbye_phrases: list[str] = Field(default_factory=lambda: list(GOODBYES))
    user_goodbye_max_chars: int | None = Field(200, ge=1, description="a longer user turn is no goodbye")
    assistant_goodbye_max_chars: int | None = Field(120, ge=1, description="a longer answer is no goodbye")
    end_token: str = Field("[END]", description="the user simulator's end signal ('' = none)")
    repeat_similarity: float = Field(0.8, ge=0, le=1, description="Levenshtein ratio above which a user turn repeats")
    max_context_chars: int = Field(24_000, ge=100)
    role_flip: bool = True
    min_user_chars: int = Field(
        3, ge=0, description="a user turn with fewer letters and digits is degenerate ('2', 'D')"
    )
    resample: int = Field(
        2, ge=0, description="times a role-flipped, copied, leaked or degenerate user turn is drawn again"
    )


# Per-ranker default thresholds (docs/methods.md, "Ranking"): scores of different rankers
# live on different scales (answer-vs-answer cosines are higher than answer-vs-strategy).
DEFAULT_THRESHOLDS = {"provenance": 0.5, "embedding": 0.2, "llm": 0.0}


class StrategyConfig(BaseModel):
    """IDEAS deduction. Quality control as published: the judge runs whenever strategy mode
    runs (the assistant's model unless one is named; `judge: false` turns it off, and the
    manifest says so)."""

    model_config = ConfigDict(extra="forbid")

    library: Annotated[str, INPUT_FILE] = Field(description="strategy library (library.json or its run directory)")
    candidates: int = Field(50, ge=1, description="strategies shown to the simulator")
    min_candidates: int = Field(
        5,
        ge=1,
        description="at least this many of the best-ranked strategies are candidates, whatever the threshold "
        "(1: the old rule, where one strategy could decide alone and none clearing meant the K best)",
    )
    threshold: float | None = Field(
        None, ge=-1, le=1, description="min ranker score to be a candidate (default per ranker: DEFAULT_THRESHOLDS)"
    )
    ranker: Literal["provenance", "embedding", "llm"] = Field(
        "provenance",
        description="provenance: closeness to the answers real users reacted to with the strategy; "
        "embedding: cosine(answer, strategy); llm: the simulator's model picks from a shortlist",
    )
    embedder: str | None = Field(None, description="defaults to the library's embedder")
    max_rejections: int = Field(6, ge=1, description="consecutive QC rejections before stopping")
    max_similarity: float = Field(0.8, ge=0, le=1, description="reject at Indel ratio > this")
    judge: BackendConfig | Literal[False] | None = Field(
        None, description="QC judge (default: the assistant's model); false turns quality control's judge off"
    )


def _option_problem(x: Any) -> str:
    where = ".".join(str(p) for p in x["loc"])
    return f"{where}: {'unknown option' if x['type'] == 'extra_forbidden' else x['msg']}"


class SimulateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: str = Field(description=f"simulator mode, one of: {', '.join(mode_names('simulate'))}")
    seeds: SeedConfig = SeedConfig()
    samples_per_seed: int = Field(1, ge=1)
    max_turns: int = Field(10, ge=1, description="user turns per conversation, seed included")
    user: BackendConfig
    assistant: BackendConfig
    user_format: Literal["prompted", "trained"] = Field(
        "prompted",
        description="trained: a simulator trained by `dialforge train simulator`, "
        "prompted exactly as trained (roles swapped, no instruction)",
    )
    user_system_prompt: str | None = None
    user_tokenizer: str | None = Field(
        None,
        description="trained simulator: the folder with its tokenizer and dialforge_template.json "
        "(default: user.model; needed when user.model is a name a server knows it by)",
    )
    personas: list[str] = Field(default_factory=list)
    strategy: StrategyConfig | None = None
    options: Annotated[dict[str, Any] | None, FINGERPRINT_IF_SET] = Field(
        None, description="the mode's own parameters (`dialforge modes` lists each mode's)"
    )
    stop: StopConfig = StopConfig()
    concurrency: Annotated[int, OPERATIONAL] = Field(64, ge=1, description="conversations alive at once")
    executor: Annotated[ExecutorConfig | None, OPERATIONAL] = Field(
        None, description="local (default) or ray: where the jobs run"
    )
    seed: int = 0

    @field_validator("mode")
    @classmethod
    def _known_mode(cls, v: str) -> str:
        get_mode(v, "simulate")
        return v

    @field_validator("options")
    @classmethod
    def _mode_options(cls, v: dict[str, Any] | None, info: ValidationInfo) -> dict[str, Any] | None:
        if v is None or "mode" not in info.data:
            return v
        mode = get_mode(info.data["mode"])
        if mode.options is None:
            raise ValueError(f"mode {mode.name} takes no options")
        try:
            return mode.options.model_validate(v).model_dump(mode="json")
        except ValidationError as e:
            problems = "; ".join(_option_problem(x) for x in e.errors())
            known = ", ".join(mode.options.model_fields)
            raise ValueError(f"{problems} (mode {mode.name}'s options: {known})") from None

    @model_validator(mode="after")
    def _check(self) -> SimulateConfig:
        s = self.seeds
        if not (s.questions or s.exchanges or s.free):
            raise ValueError("seeds: give questions, exchanges or a number of free conversations")
        problem = get_mode(self.mode).check(self)
        if problem:
            raise ValueError(problem)
        return self
