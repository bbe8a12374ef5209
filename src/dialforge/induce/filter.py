"""Source-dialogue filter (IDEAS rules): drop dialogues that repeat a user turn or contain an
empty or refusing assistant turn."""

from __future__ import annotations

from collections import Counter

from rapidfuzz.distance import Indel

from ..conversation import Conversation
from .config import REFUSAL_MARKERS, FilterConfig

__all__ = ["REFUSAL_MARKERS", "FilterConfig", "drop_reason", "filter_dialogues"]


def drop_reason(conv: Conversation, cfg: FilterConfig) -> str | None:
    users = [m.content for m in conv.messages if m.role == "user"]
    if not users:
        return "no user turns"
    for m in conv.messages:
        if m.role == "assistant":
            if not m.content.strip():
                return "empty assistant turn"
            if any(k in m.content for k in cfg.refusal_markers):
                return "refusal in assistant turn"
    for i in range(len(users)):
        for j in range(i + 1, len(users)):
            if Indel.normalized_similarity(users[i], users[j]) >= cfg.max_user_similarity:
                return "near-duplicate user turns"
    return None


def filter_dialogues(convs: list[Conversation], cfg: FilterConfig) -> tuple[list[Conversation], Counter[str]]:
    """Kept dialogues and a count of the dropped ones by reason."""
    if not cfg.enabled:
        return convs, Counter()
    kept, dropped = [], Counter[str]()
    for c in convs:
        why = drop_reason(c, cfg)
        if why is None:
            kept.append(c)
        else:
            dropped[why] += 1
    return kept, dropped
