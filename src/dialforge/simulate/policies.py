"""Assistant policies: who answers the simulated user, and the turn hooks a task-oriented
mode needs. `simulate` uses a plain chat model; self-talk a workflow agent whose hooks
track its step, check for the end and judge its consistency (workflows/agent.py). The
engine calls the same hooks for every mode."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ..llm.client import LLM
from ..llm.types import Completion
from .reasons import Termination
from .simulators import ConvState, sample_index


@dataclass
class AssistantTurn:
    text: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    instructions: tuple[str, ...] = ()  # what the agent was told this turn (never stored): a leak is caught


def completion_meta(comp: Completion) -> dict[str, Any]:
    return {
        "model": comp.model,
        "latency_s": round(comp.latency_s, 4),
        "usage": [comp.usage.prompt_tokens, comp.usage.completion_tokens],
    }


class AssistantPolicy(Protocol):
    model_id: str

    async def next_turn(self, state: ConvState) -> AssistantTurn:
        """The assistant's next message (not yet checked by the stop rules)."""
        ...

    async def after_assistant_turn(self, state: ConvState) -> Termination | None:
        """Called once the assistant's turn is in `state.messages`; a reason ends the dialogue."""
        ...

    async def after_user_turn(self, state: ConvState, text: str) -> Termination | None:
        """Called with a user turn that passed the stop rules, before it joins the dialogue;
        a reason ends the dialogue (the turn is kept only when the reason is a closing one)."""
        ...

    async def evaluate(self, state: ConvState) -> dict[str, Any]:
        """Meta for the finished conversation's record."""
        ...


class PlainAssistant:
    """A chat model answering the dialogue as it is (its system prompt from its config)."""

    def __init__(self, llm: LLM) -> None:
        self.llm = llm
        self.model_id = llm.model_id

    async def next_turn(self, state: ConvState) -> AssistantTurn:
        comp = await self.llm.complete(state.plain(), sample_index=sample_index(state))
        if not comp.ok:
            return AssistantTurn(error=comp.error or "request failed")
        return AssistantTurn(text=comp.text.strip(), meta=completion_meta(comp))

    async def after_assistant_turn(self, state: ConvState) -> Termination | None:
        return None

    async def after_user_turn(self, state: ConvState, text: str) -> Termination | None:
        return None

    async def evaluate(self, state: ConvState) -> dict[str, Any]:
        return {}
