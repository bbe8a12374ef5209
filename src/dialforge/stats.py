"""Summary statistics of a dialogue file (`dialforge stats`)."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable
from typing import Any

from .conversation import ROLES, Conversation


def _describe(xs: list[float]) -> dict[str, float]:
    if not xs:
        return {"mean": 0.0, "min": 0.0, "median": 0.0, "max": 0.0}
    return {"mean": round(statistics.fmean(xs), 3), "min": min(xs), "median": statistics.median(xs), "max": max(xs)}


def conversation_stats(convs: list[Conversation], count_tokens: Callable[[str], int] | None = None) -> dict[str, Any]:
    """Counts per dataset. Tokens are whitespace words unless a tokenizer counter is given."""
    count = count_tokens or (lambda s: len(s.split()))
    chars: Counter[str] = Counter()
    tokens: Counter[str] = Counter()
    messages: Counter[str] = Counter()
    problems: Counter[str] = Counter()
    examples: list[dict[str, str]] = []
    turns = []
    for c in convs:
        turns.append(c.n_user_turns)
        for m in c.messages:
            messages[m.role] += 1
            chars[m.role] += len(m.content)
            tokens[m.role] += count(m.content)
        for p in c.role_order_problems():
            kind = p.split(" at position")[0]
            problems[kind] += 1
            if len(examples) < 5:
                examples.append({"id": c.id, "problem": p})
    per_role = {
        r: {
            "messages": messages[r],
            "chars": chars[r],
            "tokens": tokens[r],
            "mean_chars": round(chars[r] / messages[r], 1) if messages[r] else 0.0,
        }
        for r in ROLES
        if messages[r]
    }
    return {
        "conversations": len(convs),
        "user_turns_per_conversation": _describe([float(t) for t in turns]),
        "messages_per_conversation": _describe([float(len(c.messages)) for c in convs]),
        "per_role": per_role,
        "role_order_problems": dict(problems),
        "conversations_with_problems": sum(1 for c in convs if c.role_order_problems()),
        "problem_examples": examples,
    }
