"""What every self-play mode plugs into, and nothing of the engine: the live conversation
(`ConvState`), the two turn types, the two role protocols (`UserSimulator`,
`AssistantPolicy`), the one sample-index rule and the meta a turn records of its requests.

A leaf: simulators, policies, the engine, workflows/ and agentic/ import these from here,
so a new mode's roles depend on this module only, never on the engine that runs them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..llm.types import Completion
    from .reasons import Termination


@dataclass
class ConvState:
    """One live conversation as every role sees it. `context` holds per-conversation facts
    and role state that are not messages (self-talk: the workflow, the client's intent, the
    step tracker)."""

    conv_id: str
    messages: list[dict[str, Any]]  # {"role", "content", "meta"}
    sample: int
    persona: str | None = None
    topic: str | None = None
    user_turns: int = 0
    assistant_turns: int = 0
    rng: random.Random = field(default_factory=random.Random)
    context: dict[str, Any] = field(default_factory=dict)
    attempt: int = 0  # the engine's redraw of a bad user turn (0: the first draw)

    def plain(self) -> list[dict[str, str]]:
        return [{"role": m["role"], "content": m["content"]} for m in self.messages]


@dataclass
class UserTurn:
    text: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    stop: str | None = None  # a Termination: the simulator ends the conversation (end signal, rejections, error)
    instructions: tuple[str, ...] = ()  # what the simulator was told (never stored): a leak of it is caught


@dataclass
class AssistantTurn:
    text: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    instructions: tuple[str, ...] = ()  # what the agent was told this turn (never stored): a leak is caught


class UserSimulator(Protocol):
    model_id: str

    async def next_turn(self, state: ConvState) -> UserTurn: ...


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


def sample_index(state: ConvState, attempt: int = 0) -> int:
    """The one sample-index scheme of every mode and role: distinct per conversation, per
    turn and per retry, so two conversations whose prompts happen to be identical (free
    mode, samples of one seed) still sample independently, and a resumed run replays exactly
    the same requests (cache hits). Roles and helpers of one turn differ by their prompts."""
    return (int(state.conv_id[:8], 16) << 16) + state.user_turns * 64 + attempt + 8 * state.attempt


def completion_meta(comp: Completion) -> dict[str, Any]:
    """The meta an assistant turn records of its request."""
    return {
        "model": comp.model,
        "latency_s": round(comp.latency_s, 4),
        "usage": [comp.usage.prompt_tokens, comp.usage.completion_tokens],
    }


def usage_meta(comps: Sequence[Completion]) -> dict[str, Any]:
    """The meta a user turn records of its requests (a strategy turn makes several)."""
    return {
        "model": comps[-1].model if comps else None,
        "usage": [sum(c.usage.prompt_tokens for c in comps), sum(c.usage.completion_tokens for c in comps)],
        "latency_s": round(sum(c.latency_s for c in comps), 4),
    }
