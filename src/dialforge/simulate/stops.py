"""Stop rules of the self-play loop; each returns a termination reason or None."""

from __future__ import annotations

import re

from rapidfuzz.distance import Levenshtein

from .config import StopConfig

# Openings that mark an assistant-style answer where a user request was expected.
_ANSWER_OPENINGS = re.compile(
    r"^\s*(sure[,!.]|certainly[,!.]|of course[,!.]|absolutely[,!.]|as an ai\b|i'?d be (happy|glad) to|"
    r"i am an ai|i'm an ai|here (is|are) (a|an|the|some)\b|great question)",
    re.I,
)
_ROLE_PREFIX = re.compile(r"^\s*(user|human|assistant|gpt|system)\s*:", re.I)


def max_similarity(text: str, earlier: list[str]) -> float:
    return max((Levenshtein.normalized_similarity(text, e) for e in earlier), default=0.0)


def check_user_turn(text: str, earlier_user: list[str], cfg: StopConfig) -> str | None:
    if not text.strip():
        return "empty_turn"
    if cfg.end_token and cfg.end_token in text:
        return "end_signal"
    low = text.lower()
    if any(p in low for p in cfg.goodbye_phrases) and len(text) < 200:
        return "goodbye"
    if earlier_user and max_similarity(text, earlier_user) > cfg.repeat_similarity:
        return "repetition"
    if cfg.role_flip and (_ANSWER_OPENINGS.match(text) or _ROLE_PREFIX.match(text)):
        return "role_flip"
    return None


def check_assistant_turn(text: str, last_user: str, cfg: StopConfig) -> str | None:
    if not text.strip():
        return "empty_turn"
    if cfg.role_flip and (
        _ROLE_PREFIX.match(text) or Levenshtein.normalized_similarity(text, last_user) > cfg.repeat_similarity
    ):
        return "role_flip"  # the assistant asks the user's question back (or speaks as another role)
    low = text.lower()
    if any(p in low for p in cfg.goodbye_phrases) and len(text) < 120:
        return "goodbye"
    return None
