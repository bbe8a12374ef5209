"""Extraction: for each user turn with its full history, the LLM states the generic
instruction strategy behind it (structured output)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ..conversation import Conversation, stable_hash


class ExtractedStrategy(BaseModel):
    analysis: str = Field(description="one or two sentences on why the user asked this next")
    strategy: str = Field(description="one generic strategy phrase, at most 20 words, no specifics")


EXTRACT_SYSTEM = (
    "You study how people steer conversations with AI assistants. Given a dialogue so far and "
    "the user's next message, explain briefly what the user is trying to achieve with it, then "
    "name the instruction strategy behind it as one short generic phrase (at most 20 words) "
    "that would fit many other dialogues: no names, topics or details from this dialogue. "
    "Examples of the style: 'Dig deeper into a detail of the previous answer', "
    "'Ask for a concrete example to check understanding', 'Challenge an assumption and ask "
    "for an alternative'. Answer in JSON with the keys analysis and strategy."
)

MAX_STRATEGY_WORDS = 20


def _render(messages: list[dict[str, str]], max_chars: int) -> str:
    lines = []
    for m in messages:
        text = m["content"]
        if len(text) > max_chars:
            text = text[: max_chars // 2] + " [...] " + text[-max_chars // 2 :]
        lines.append(f"{m['role'].upper()}: {text}")
    return "\n\n".join(lines)


def extraction_units(conv: Conversation, include_first_turn: bool = False) -> list[dict[str, Any]]:
    """One unit per user turn: the full history before it and the turn itself. The opening
    turn has no history to react to, so it is left out by default (as published)."""
    units = []
    msgs = [m for m in conv.messages if m.role in ("system", "user", "assistant")]
    user_index = 0
    for i, m in enumerate(msgs):
        if m.role != "user":
            continue
        if user_index > 0 or include_first_turn:
            history = [{"role": x.role, "content": x.content} for x in msgs[:i] if x.role != "system"]
            units.append(
                {
                    "id": stable_hash("extract", conv.id, user_index),
                    "conversation_id": conv.id,
                    "turn_index": user_index,
                    "history": history,
                    "instruction": m.content,
                }
            )
        user_index += 1
    return units


def extraction_messages(unit: dict[str, Any], max_chars_per_turn: int = 1500) -> list[dict[str, str]]:
    history = _render(unit["history"], max_chars_per_turn) if unit["history"] else "(no earlier turns)"
    return [
        {"role": "system", "content": EXTRACT_SYSTEM},
        {
            "role": "user",
            "content": f"Dialogue so far:\n\n{history}\n\n---\nThe user's next "
            f"message:\n{unit['instruction'][:max_chars_per_turn]}",
        },
    ]


_PROMPT_ECHOES = ("dialogue so far", "strategies", "the user's next message", "analysis", "strategy")


def degenerate_strategy(text: str) -> str | None:
    """Why a strategy phrase is no strategy (None when it looks like one): what a weak model
    writes when the task is beyond it: digits and punctuation ('2023-2024-18-10, ...'), one
    word ('strategemethod'), or an echo of the prompt's own headers ('Strategies:')."""
    t = text.strip()
    words = [w for w in t.replace("-", " ").split() if sum(c.isalpha() for c in w) >= 2]
    if len(words) < 2:
        return "one word"
    if sum(c.isalpha() or c.isspace() for c in t) < 0.8 * len(t):
        return "mostly digits and punctuation"
    if t.lower().rstrip(":. ") in _PROMPT_ECHOES or t.lower().startswith(_PROMPT_ECHOES[:3]):
        return "an echo of the prompt"
    return None


def clean_strategy(text: str) -> str:
    """One line, at most 20 words, no trailing period."""
    words = " ".join(text.split()).split(" ")
    return " ".join(words[:MAX_STRATEGY_WORDS]).strip().rstrip(".")
