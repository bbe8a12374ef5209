"""LLM-judge scores for the user side of a dialogue (PlatoLM's question-quality rubric)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field

from ..conversation import Conversation
from ..llm.client import LLM

CRITERIA = ("complexity", "relevancy", "logicality", "diversity")

QUESTION_QUALITY_SYSTEM = (
    "You rate the questions and instructions a human user wrote in a conversation with an AI "
    "assistant, not the assistant's answers. Give each criterion an integer from 1 to 10:\n"
    "- complexity: the user's turns are informative and go deeper than the turns before them;\n"
    "- relevancy: each turn connects to the conversation so far, above all to the last answer;\n"
    "- logicality: what the user infers from the context is sound;\n"
    "- diversity: the user varies how the topic develops (following up, associating related "
    "questions, moving to new topics) instead of repeating one pattern.\n"
    "Answer in JSON with the keys complexity, relevancy, logicality, diversity and a one-"
    "sentence rationale."
)


class QuestionQuality(BaseModel):
    complexity: int = Field(ge=1, le=10)
    relevancy: int = Field(ge=1, le=10)
    logicality: int = Field(ge=1, le=10)
    diversity: int = Field(ge=1, le=10)
    rationale: str = ""


def render_for_judge(conv: Conversation, max_chars: int = 1500) -> str:
    parts = []
    for m in conv.dialogue():
        text = m.content if len(m.content) <= max_chars else m.content[:max_chars] + " [...]"
        parts.append(f"{'HUMAN' if m.role == 'user' else 'ASSISTANT'}: {text}")
    return "\n\n".join(parts)


def parse_loose(text: str) -> dict[str, int] | None:
    """Fallback for judges that ignore the JSON instruction: `Complexity: 7` etc."""
    out = {}
    for c in CRITERIA:
        m = re.search(rf"{c}\W{{0,4}}(\d+)", text, re.I)
        if not m:
            return None
        out[c] = max(1, min(10, int(m.group(1))))
    return out


async def judge_question_quality(llm: LLM, conv: Conversation) -> dict[str, Any]:
    """Scores (and their mean) or an error; the raw judge output is always kept."""
    res = await llm.structured(
        [{"role": "system", "content": QUESTION_QUALITY_SYSTEM}, {"role": "user", "content": render_for_judge(conv)}],
        QuestionQuality,
        params=llm.params,
    )
    out: dict[str, Any] = {"raw": res.raw}
    scores: dict[str, int] | None = None
    if res.value is not None:
        scores = {c: getattr(res.value, c) for c in CRITERIA}
    else:
        for raw in res.raw:
            scores = parse_loose(raw)
            if scores:
                break
    if scores is None:
        out["error"] = res.error or "no scores in the judge output"
        return out
    out.update(scores)
    out["mean"] = sum(scores.values()) / len(scores)
    return out
