"""User turns of a dialogue set, and the cheap per-turn style features the card compares.

A user turn is counted once per context: OASST threads of one tree repeat their shared
prefix, so a turn whose whole history (and text) was already seen is not counted again.
Turns are grouped by conversation family (an OASST tree, else the opening message) so that
cross-validation never puts turns of one family on both sides of a fold.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..conversation import Conversation, Message
from ..score.metrics import is_follow_up, words


@dataclass(frozen=True)
class UserTurn:
    text: str
    group: str  # conversation family: turns of one family stay in one CV fold
    position: int  # 0 = the opening user turn
    previous_answer: str | None  # the assistant message just before it, if any


def group_key(conv: Conversation) -> str:
    """The family a conversation belongs to: its OASST tree id, else its opening message."""
    for key in ("message_tree_id", "tree_id", "group"):
        v = conv.meta.get(key)
        if v:
            return f"{key}:{v}"
    body = [m for m in conv.messages if m.role != "system"]
    first = body[0].content if body else conv.id
    return "open:" + hashlib.sha1(first.encode()).hexdigest()[:16]


def is_seed(m: Message) -> bool:
    """A user message a real person wrote that a simulated conversation starts from."""
    return m.role == "user" and m.meta.get("seed") is True


def simulated(convs: Sequence[Conversation]) -> list[Conversation]:
    """The conversations with at least one simulated (non-seed) user turn."""
    return [c for c in convs if any(m.role == "user" and not is_seed(m) for m in c.messages)]


def user_turns(convs: Sequence[Conversation], *, simulated_only: bool = False) -> list[UserTurn]:
    """Every distinct user turn in context (a shared thread prefix counts once). With
    `simulated_only` (the SIM side), seed turns (`meta.seed`: real people's words) stay in
    the history but are not counted: only the simulator's own turns are."""
    seen: set[str] = set()
    out: list[UserTurn] = []
    for conv in convs:
        g = group_key(conv)
        h = hashlib.sha1()
        position = 0
        previous: str | None = None
        for m in conv.messages:
            if m.role == "tool" or m.is_tool_call:
                continue
            h.update(m.role.encode() + b"\0" + m.content.encode() + b"\1")
            if m.role == "assistant":
                previous = m.content
            elif m.role == "user":
                key = h.hexdigest()
                if key not in seen and m.content.strip() and not (simulated_only and is_seed(m)):
                    seen.add(key)
                    out.append(UserTurn(m.content, g, position, previous))
                position += 1
    return out


def assistant_turns(convs: Sequence[Conversation]) -> list[UserTurn]:
    """Distinct assistant messages (same shape as user turns) for the role classifier."""
    seen: set[str] = set()
    out: list[UserTurn] = []
    for conv in convs:
        g = group_key(conv)
        for i, m in enumerate(conv.messages):
            if m.role == "assistant" and m.content.strip() and not m.is_tool_call:
                key = hashlib.sha1(f"{g}\0{m.content}".encode()).hexdigest()
                if key not in seen:
                    seen.add(key)
                    out.append(UserTurn(m.content, g, i, None))
    return out


def turns_per_conversation(convs: Sequence[Conversation], *, simulated_only: bool = False) -> list[int]:
    """User turns per conversation: where conversations end (SIM: simulated turns only; a
    conversation without one contributes nothing)."""
    return [n for n in _user_counts(convs, simulated_only) if n]


def conversation_groups(convs: Sequence[Conversation], *, simulated_only: bool = False) -> list[str]:
    """The family of each conversation `turns_per_conversation` counts, in its order."""
    return [g for g, n in zip(map(group_key, convs), _user_counts(convs, simulated_only), strict=True) if n]


def _user_counts(convs: Sequence[Conversation], simulated_only: bool) -> list[int]:
    return [sum(1 for m in c.messages if m.role == "user" and not (simulated_only and is_seed(m))) for c in convs]


# -- role adherence: phrases that read like an assistant --------------------------------
_ASSISTANT_OPENER = re.compile(
    r"^\s*(sure|certainly|of course|absolutely|great question|good question|as an ai|i'?d be (happy|glad) to|"
    r"i'?m (happy|glad) to|i (can|will) help|here (is|are)|here'?s|hello!? how can i|hi!? how can i)\b",
    re.I,
)
_ASSISTANT_PHRASE = re.compile(
    r"\b(as an ai|as a language model|i'?m an ai|i am an ai|language model|i hope this helps|hope this helps|"
    r"let me know if you (have|need)|feel free to (ask|reach)|i apologi[sz]e|in summary,|in conclusion,|"
    r"how can i (help|assist) you|how may i (help|assist)|is there anything else|happy to help|"
    r"i don'?t have (personal|access))\b",
    re.I,
)


def reads_like_assistant(text: str) -> bool:
    """An assistant-style opener ("Sure!", "Here is ...") or phrase ("I hope this helps")."""
    return bool(_ASSISTANT_OPENER.search(text) or _ASSISTANT_PHRASE.search(text))


_QUESTION_START = re.compile(
    r"^\s*(what|how|why|when|where|who|which|can|could|would|will|is|are|do|does|did|should|may)\b", re.I
)


def is_question(text: str) -> bool:
    """A question mark, or a turn that opens with a question word."""
    return "?" in text or bool(_QUESTION_START.match(text))


def is_follow_up_turn(turn: UserTurn) -> bool | None:
    """Whether the turn refers back to the previous answer; None for an opening turn."""
    if turn.previous_answer is None:
        return None
    return is_follow_up(turn.text, turn.previous_answer)


# -- style features -------------------------------------------------------------------
_MARKDOWN = re.compile(r"(^\s*([-*+]|\d+[.)])\s+\S|^\s*#{1,6}\s|\*\*|```)", re.M)
_FIRST = frozenset("i me my mine we us our".split())
_SECOND = frozenset("you your yours".split())
_POLITE = re.compile(r"\b(please|thanks|thank you|thx)\b", re.I)
_PUNCT = re.compile(r"[^\w\s]")

STYLE_FEATURES: tuple[str, ...] = (
    "log_words",
    "log_chars",
    "mean_word_length",
    "question",
    "exclamation",
    "log_newlines",
    "markdown",
    "uppercase_share",
    "digit_share",
    "punctuation_share",
    "first_person_rate",
    "second_person_rate",
    "polite",
    "starts_lowercase",
    "ends_with_punctuation",
    "assistant_phrase",
)


def style_vector(text: str) -> list[float]:
    w = words(text)
    n_w = len(w)
    n_c = len(text)
    letters = sum(ch.isalpha() for ch in text)
    stripped = text.strip()
    return [
        float(np.log1p(n_w)),
        float(np.log1p(n_c)),
        (sum(len(x) for x in w) / n_w) if n_w else 0.0,
        float(is_question(text)),
        float("!" in text),
        float(np.log1p(text.count("\n"))),
        float(bool(_MARKDOWN.search(text))),
        (sum(ch.isupper() for ch in text) / letters) if letters else 0.0,
        (sum(ch.isdigit() for ch in text) / n_c) if n_c else 0.0,
        (len(_PUNCT.findall(text)) / n_c) if n_c else 0.0,
        (sum(x in _FIRST for x in w) / n_w) if n_w else 0.0,
        (sum(x in _SECOND for x in w) / n_w) if n_w else 0.0,
        float(bool(_POLITE.search(text))),
        float(bool(stripped) and stripped[0].islower()),
        float(bool(stripped) and stripped[-1] in ".!?"),
        float(reads_like_assistant(text)),
    ]


def style_matrix(texts: Sequence[str]) -> np.ndarray:
    """One row of STYLE_FEATURES per text."""
    if not texts:
        return np.zeros((0, len(STYLE_FEATURES)), dtype=np.float64)
    return np.asarray([style_vector(t) for t in texts], dtype=np.float64)
