"""Configuration of `dialforge selftalk` (data only: it imports other configs, never the
engine; `SelfTalkConfig` is importable from workflows/selftalk.py as before)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..llm.config import BackendConfig
from ..markers import INPUT_FILE, OPERATIONAL
from ..run.config import ExecutorConfig
from ..simulate.config import StopConfig

# The subgoal tracker's defaults (workflows/tracker.py reads them from here).
THRESHOLD = 0.33
Order = Literal["any", "lookahead", "graph"]
ORDERS: tuple[Order, ...] = ("graph", "any", "lookahead")
# chosen by measurement (docs/star_tracker.md: STAR human dialogues, complete vs cut after
# half the wizard turns); "graph" is the Self-Talk paper's tracker
DEFAULT_ORDER: Order = "any"

DEFAULT_PERSONAS = [
    "a busy parent who wants things done quickly",
    "a retired teacher who is polite and precise",
    "a student on a tight budget",
    "a frequent traveller who knows what they want",
    "a first-time customer who is unsure and asks many questions",
]
AGENT_PERSONAS = [
    "I have done this work for many years and I take pride in good service.",
    "I am patient and friendly, and I explain things simply.",
    "I am efficient and precise, and I keep to the point.",
    "I am new to this job, eager to help and careful to get things right.",
]
# Self-talk's stop rules: the shared set, without role-flip and repetition rules (a client
# answering "Sure, ..." or "Yes" twice is normal here) and with no length limit on goodbyes.
SELFTALK_STOP = StopConfig(
    end_token="",
    repeat_similarity=1.0,
    role_flip=False,
    user_goodbye_max_chars=None,
    assistant_goodbye_max_chars=None,
)


class FilterSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["none", "abs_subgoals", "top_percent", "ended", "random"] = "top_percent"
    k: int = Field(5, ge=1, description="abs_subgoals: keep depth >= k")
    p: float = Field(0.05, gt=0, le=1, description="top_percent / random: fraction kept")
    seed: int = 0


class SelfTalkConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workflows: Annotated[str, INPUT_FILE] = Field(description="workflow folder or file (YAML)")
    client: BackendConfig
    agent: BackendConfig
    picker: Literal["auto", "llm", "rouge"] = Field(
        "auto",
        description="step tracker: the LLM option picker where a step's options carry text (auto, llm), "
        "ROUGE-L where they don't (or always: rouge)",
    )
    picker_model: BackendConfig | None = Field(None, description="LLM option picker (default: the client model)")
    picker_threshold: float = THRESHOLD
    dialogues_per_workflow: int = Field(10, ge=1)
    personas: list[str] = Field(default_factory=lambda: list(DEFAULT_PERSONAS), description="client characters")
    agent_personas: list[str] = Field(
        default_factory=lambda: list(AGENT_PERSONAS), description="the agent's persona, in the first person"
    )
    intents: dict[str, list[str]] = Field(default_factory=dict, description="workflow name -> client intents")
    agent_tasks: dict[str, str] = Field(
        default_factory=dict, description="workflow name -> the agent's task wording (default: its description)"
    )
    star_dialogues: Annotated[str | None, INPUT_FILE] = Field(
        None,
        description="STAR dialogues file: their written user tasks become the client intents of the matching "
        "workflows, their wizard tasks the agent's task wording",
    )
    intents_file: Annotated[str | None, INPUT_FILE] = Field(
        None, description="client intents: a dialogue file with goals, an intents.json, or one intent per line"
    )
    max_turns: int = Field(8, ge=1, description="agent+client exchanges")
    stop: StopConfig = Field(default_factory=lambda: SELFTALK_STOP.model_copy(), description="stop rules")
    filter: FilterSpec = FilterSpec()
    tracker_order: Order = Field(
        DEFAULT_ORDER,
        description="the subgoal tracker the filters rank by: any (default, chosen on STAR human dialogues, "
        "docs/star_tracker.md), lookahead (order-tolerant, bounded), graph (the paper's walk)",
    )
    end_check: BackendConfig | None = Field(None, description="LLM end check: start/middle/end after each exchange")
    consistency_judge: BackendConfig | None = Field(
        None, description="LLM judge of the agent staying in character, per utterance (optional)"
    )
    loops: int = Field(1, ge=1, description="generate -> filter -> train rounds")
    loss_on: Literal["agent", "all"] = "agent"
    train_epochs: float = 1.0
    train_max_steps: int = -1
    train_lr: float = 5e-4
    lora_r: int = 64
    concurrency: Annotated[int, OPERATIONAL] = Field(32, ge=1)
    executor: Annotated[ExecutorConfig | None, OPERATIONAL] = Field(
        None, description="local (default) or ray: where each loop's dialogues are generated"
    )
