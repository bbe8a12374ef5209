"""Stop rules of the self-play loop, shared by every mode; each returns a termination
reason or None. Modes differ only in their `StopConfig` (self-talk: no role-flip or
repetition rule, since a client answering "Sure, ..." or "Yes" twice is normal there)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rapidfuzz import fuzz
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

# Openings that mark an assistant-style answer where a user request was expected: the
# ones small instruct models write when they forget they are the user ("Here's ...", "I'm
# glad I could assist ...", "I'm sorry, but I can't assist with that."). A user's own "Here
# is my code" is no answer: only the openings that present an answer count.
_ANSWER_OPENINGS = re.compile(
    r"^\W*(sure[,!.]|certainly[,!.]|of course[,!.]|absolutely[,!.]|as an ai\b|as an assistant\b|"
    r"i'?d be (happy|glad|delighted) to|i am an ai|i'm an ai|great question|that's a great question|"
    r"here(?:'s| is| are) (a|an|the|some|how|what|why|my (answer|response|suggestion)s?)\b|"
    r"i'?m (so |really )?(glad|happy) (i|to|you|that)\b|i am (glad|happy) (i|to|you|that)\b|"
    r"(i'?m|i am) sorry,? (but )?(i|as an ai)\b|(i|we) (can'?t|cannot|am unable to) (assist|help) with\b|"
    r"thank you for (your|the) (question|message|kind words)|you'?re (very )?welcome\b|"
    r"(i )?hope (this|that) helps\b|let me (explain|help)\b)",
    re.I,
)
_ROLE_PREFIX = re.compile(r"^\s*(user|human|assistant|gpt|system|ai|bot|agent|client|customer)\s*:", re.I)

# A label or framing a model writes before the turn itself ("User: ...", "My next message:
# ...", wrapping quotes): stripped, the rest is the turn.
_LABEL = re.compile(
    r"^\s*(\*\*)?(user|human|me|you|my (next )?(message|question|reply)|(writing )?(your|my|the user'?s) next message"
    r"( to the assistant)?|next message|message|question)(\*\*)?\s*:\s*",
    re.I,
)
# Instruction text that leaked into a turn: words about the role-play a real speaker never writes.
_LEAK = re.compile(
    r"\b(as the user\b|the user'?s (next )?(message|turn|reply|response)|(write|writing) (your|my|the) next message|"
    r"the user will\b|next message to the assistant|role-?play(ing)?\b|stay(ing)? in character|no preamble|"
    r"now,? you must say|you must say:|without elaborating beyond what the user)"
    # a bracketed stage direction: "(Now write back ...)", "(Add one or two sentences ...)"
    r"|\((now,? )?(write|add|choose|continue|one short|in your own words)(?=[\s,.)])",
    re.I,
)
_NGRAM = 6  # a run of this many words copied from the instructions is a leak
# The framing of an agent's step instruction, leaked into the agent's own turn.
_AGENT_LEAK = re.compile(r"\bnow,? you must say\b|\byou must say:|\b(write|writing) your next (message|reply)\b", re.I)


def clean_turn(text: str) -> str:
    """A generated turn without the label or quotes a model put around it."""
    t = text.strip()
    for _ in range(2):
        m = _LABEL.match(t)
        if m and t[m.end() :].strip():
            t = t[m.end() :].strip()
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "\"'":
        t = t[1:-1].strip()
    return t


def _ngrams(text: str, n: int = _NGRAM) -> set[tuple[str, ...]]:
    w = re.findall(r"[a-z0-9']+", text.lower())
    return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}


def leaks(text: str, instructions: Sequence[str] = (), dialogue: Sequence[str] = ()) -> bool:
    """Whether instruction text leaked into a turn: a role-play phrase, or a run of words
    copied from the instructions the speaker was given that the dialogue itself does not hold."""
    if _LEAK.search(text):
        return True
    if not instructions:
        return False
    grams = _ngrams(text)
    if not grams:
        return False
    said: set[tuple[str, ...]] = set()
    for d in dialogue:
        said |= _ngrams(d)
    return any(grams & (_ngrams(i) - said) for i in instructions)


def copies(text: str, answer: str | None, min_chars: int = 24) -> bool:
    """Whether a user turn mostly copies the answer it replies to (a weak model echoing it):
    nearly all of the turn appears in the answer, or the two are nearly the same text."""
    if not answer:
        return False
    if len(text) < min_chars:
        return text.strip().lower() == answer.strip().lower()
    if fuzz.partial_ratio(text.lower(), answer.lower()) >= 90 and len(text) <= 1.2 * len(answer):
        return True
    return Levenshtein.normalized_similarity(text, answer) > 0.8


def max_similarity(text: str, earlier: list[str]) -> float:
    return max((Levenshtein.normalized_similarity(text, e) for e in earlier), default=0.0)


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def says_goodbye(text: str, phrases: list[str], max_chars: int | None) -> bool:
    """A closing turn: a goodbye phrase in its last sentence and no question left in it. A
    reply that says "You're welcome! Which day suits you?" goes on; so does a long answer that
    ends "good luck!" (longer than `max_chars`)."""
    if max_chars is not None and len(text) >= max_chars:
        return False
    low = text.lower().strip()
    if "?" in low:
        return False
    sentences = [x for x in _SENTENCE_END.split(low) if x.strip()]
    tail = " ".join(sentences[-2:]) if len(sentences) > 1 and len(sentences[-1]) < 25 else (sentences or [""])[-1]
    return any(p in tail for p in phrases)


def check_user_turn(
    text: str,
    earlier_user: list[str],
    cfg: StopConfig,
    *,
    last_answer: str | None = None,
    instructions: Sequence[str] = (),
) -> Termination | None:
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
    if cfg.role_flip and copies(text, last_answer):
        return Termination.COPIED
    if leaks(text, instructions, [*earlier_user, *([last_answer] if last_answer else [])]):
        return Termination.LEAK
    if len(re.sub(r"\W", "", text)) < cfg.min_user_chars:
        return Termination.DEGENERATE
    return None


def check_assistant_turn(
    text: str, last_user: str | None, cfg: StopConfig, *, instructions: Sequence[str] = ()
) -> Termination | None:
    """`last_user` is None when the assistant opens the dialogue (self-talk's agent);
    `instructions`: what the agent was told this turn (a leak of it ends the dialogue)."""
    if not text.strip():
        return Termination.EMPTY_TURN
    if _AGENT_LEAK.search(text) or (instructions and leaks(text, instructions, [last_user] if last_user else [])):
        return Termination.LEAK
    if cfg.role_flip and (
        _ROLE_PREFIX.match(text)
        or (last_user is not None and Levenshtein.normalized_similarity(text, last_user) > cfg.repeat_similarity)
    ):
        return Termination.ROLE_FLIP  # the assistant asks the user's question back (or speaks as another role)
    if says_goodbye(text, cfg.goodbye_phrases, cfg.assistant_goodbye_max_chars):
        return Termination.GOODBYE
    return None
