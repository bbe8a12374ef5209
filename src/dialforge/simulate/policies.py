"""Assistant policies: who answers the simulated user. `simulate` uses a plain chat model;
self-talk a workflow agent whose hooks track its step, check for the end and judge its
consistency (workflows/agent.py). The policy protocol and the turn type are contracts
(simulate/contracts.py); the engine calls the same hooks for every mode."""

from __future__ import annotations

from typing import Any

from ..llm.client import LLM
from .contracts import AssistantPolicy as AssistantPolicy  # the contracts' old import path
from .contracts import AssistantTurn as AssistantTurn
from .contracts import ConvState, completion_meta, sample_index
from .reasons import Termination


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
