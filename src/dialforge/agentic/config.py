"""`AgentToolsConfig`: agentic self-talk from one YAML (data only: no engine imports)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..llm.config import BackendConfig
from ..markers import INPUT_FILE, OPERATIONAL
from ..simulate.config import StopConfig

STOP_TOKEN = "###STOP###"
ExportFormat = Literal["openai", "llamafactory", "trl"]
DEFAULT_EXPORTS: tuple[ExportFormat, ...] = ("openai", "llamafactory")
BUILTIN_TASKS = ("restaurant_book", "hotel_book", "plane_book")
DEFAULT_PERSONAS = [
    "a busy parent who wants things done quickly",
    "a retired teacher who is polite and precise",
    "a student on a tight budget",
    "a frequent traveller who knows what they want",
]
# the shared stop rules with the customer's stop token; a customer saying "yes" twice is no
# repetition, a customer answering "Sure, ..." no role flip (a turn in the agent's voice is
# counted as a simulator error instead, agentic/success.py), and a goodbye of the agent after
# a booking is a natural end at any length
AGENTIC_STOP = StopConfig(
    end_token=STOP_TOKEN, repeat_similarity=1.0, role_flip=False, assistant_goodbye_max_chars=None
)


def bundled_star() -> Path:
    return Path(__file__).resolve().parent.parent / "data" / "star"


class AgentToolsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: BackendConfig = Field(description="the customer simulator")
    agent: BackendConfig = Field(description="the tool-calling agent")
    star_dir: Annotated[str | None, INPUT_FILE] = Field(
        None, description="STAR's apis/ and dbs/ (default: the copy bundled with dialforge)"
    )
    tasks: list[str] = Field(
        default_factory=lambda: list(BUILTIN_TASKS), description="STAR tasks: " + ", ".join(BUILTIN_TASKS)
    )
    goals_per_task: int = Field(3, ge=1, description="hidden goals drawn per task")
    samples: int = Field(3, ge=1, description="conversations per goal (k of pass^k)")
    db_rows: int = Field(20, ge=1, description="rows drawn for a domain whose rows are not named")
    db_seed: int = 0
    goal_seed: int = 0
    tool_format: Literal["auto", "native", "parsed"] = Field(
        "auto",
        description="native: OpenAI tools API (HTTP); parsed: <tool_call> JSON blocks in the text; "
        "auto: native over HTTP, parsed in-process",
    )
    max_turns: int = Field(10, ge=1, description="customer turns")
    max_calls_per_turn: int = Field(4, ge=1, description="tool calls the agent may make in one turn")
    python_tools: list[str] = Field(
        default_factory=list, description="extra tools, package.module:function (a Tool or a typed callable)"
    )
    personas: list[str] = Field(default_factory=lambda: list(DEFAULT_PERSONAS))
    stop: StopConfig = Field(default_factory=lambda: AGENTIC_STOP.model_copy())
    export: list[ExportFormat] = Field(
        default_factory=lambda: list(DEFAULT_EXPORTS), description="formats of the verified-success export"
    )
    concurrency: Annotated[int, OPERATIONAL] = Field(16, ge=1)

    @field_validator("tasks")
    @classmethod
    def _known_tasks(cls, v: list[str]) -> list[str]:
        unknown = [t for t in v if t not in BUILTIN_TASKS]
        if unknown:
            raise ValueError(f"unknown task {unknown[0]!r} (known: {', '.join(BUILTIN_TASKS)})")
        if not v:
            raise ValueError("name at least one task")
        return v
