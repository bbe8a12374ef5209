"""Stop rules of the self-play loop, shared by every mode; each returns a termination
reason or None. Modes differ only in their `StopConfig` (self-talk: no role-flip or
repetition rule, since a client answering "Sure, ..." or "Yes" twice is normal there)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from rapidfuzz.distance import Levenshtein

from .reasons import Termination

if TYPE_CHECKING:
    from .config import StopConfig

# One goodbye list for every mode (the Self-Talk paper's key phrases included).
GOODBYES = [
    "goodbye",
    "good bye",
    "bye bye",
    "bye!",
    "good luck",
    "you're welcome",
    "thanks for your help",
    "thank you for your help",
    "that's all i needed",
    "that is all i needed",
    "have a nice day",
    "have a great day",
]

# Openings that mark an assistant-style answer where a user request was expected.
_ANSWER_OPENINGS = re.compile(
    r"^\s*(sure[,!.]|certainly[,!.]|of course[,!.]|absolutely[,!.]|as an ai\b|i'?d be (happy|glad) to|"
    r"i am an ai|i'm an ai|here (is|are) (a|an|the|some)\b|great question)",
    re.I,
)
_ROLE_PREFIX = re.compile(r"^\s*(user|human|assistant|gpt|system)\s*:", re.I)


def max_similarity(text: str, earlier: list[str]) -> float:
    return max((Levenshtein.normalized_similarity(text, e) for e in earlier), default=0.0)


def says_goodbye(text: str, phrases: list[str], max_chars: int | None) -> bool:
    """A goodbye phrase in a short enough turn (a long answer that ends "good luck!" goes on)."""
    if max_chars is not None and len(text) >= max_chars:
        return False
    low = text.lower()
    return any(p in low for p in phrases)


def check_user_turn(text: str, earlier_user: list[str], cfg: StopConfig) -> Termination | None:
    if not text.strip():
        return Termination.EMPTY_TURN
    if cfg.end_token and cfg.end_token in text:
        return Termination.END_SIGNAL
    if says_goodbye(text, cfg.goodbye_phrases, cfg.user_goodbye_max_chars):
        return Termination.GOODBYE
    if earlier_user and max_similarity(text, earlier_user) > cfg.repeat_similarity:
        return Termination.REPETITION
    if cfg.role_flip and (_ANSWER_OPENINGS.match(text) or _ROLE_PREFIX.match(text)):
        return Termination.ROLE_FLIP
    return None


def check_assistant_turn(text: str, last_user: str | None, cfg: StopConfig) -> Termination | None:
    """`last_user` is None when the assistant opens the dialogue (self-talk's agent)."""
    if not text.strip():
        return Termination.EMPTY_TURN
    if cfg.role_flip and (
        _ROLE_PREFIX.match(text)
        or (last_user is not None and Levenshtein.normalized_similarity(text, last_user) > cfg.repeat_similarity)
    ):
        return Termination.ROLE_FLIP  # the assistant asks the user's question back (or speaks as another role)
    if says_goodbye(text, cfg.goodbye_phrases, cfg.assistant_goodbye_max_chars):
        return Termination.GOODBYE
    return None
