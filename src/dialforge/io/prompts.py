"""How a record yields a seed prompt: the rules a format entry (`registry.Format.seed`) names.

- a prompt record: the first of `SEED_KEYS` it has (`instruction` + `input` as Alpaca joins
  them, MT-Bench's `turns` their first);
- a conversation record: the first user turn of what the format's parser reads;
- `text_field`: a field the user names (dotted), whatever the format.
A rule may also say that a record opens no prompt at all (an answer inside a thread).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..conversation import Conversation
from ..errors import RecordError
from .chat_formats import alpaca_prompt
from .formats import type_name

#: Record shapes that hold prompts, not conversations.
SEED_KEYS = ("text", "prompt", "question", "instruction", "data", "turns")


def _always(rec: dict[str, Any]) -> bool:
    return True


@dataclass(frozen=True)
class SeedRule:
    """A format's seed prompt of one record (`text`), and whether the record opens a prompt at
    all (`opens`; a record that does not is left out and counted, not an error)."""

    text: Callable[[dict[str, Any]], str]
    opens: Callable[[dict[str, Any]], bool] = _always


def string(v: Any, field: str) -> str:
    """A non-empty prompt string, or a RecordError naming the field."""
    if not isinstance(v, str):
        raise RecordError(f"expected a string, got {type_name(v)}", field=field)
    if not v.strip():
        raise RecordError("empty prompt", field=field)
    return v


def _dotted(rec: dict[str, Any], dotted: str) -> Any:
    cur: Any = rec
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            keys = ", ".join(map(str, list(cur)[:12])) if isinstance(cur, dict) else type_name(cur)
            raise RecordError(f"missing field (the record has keys: {keys or 'none'})", field=dotted)
        cur = cur[part]
    return cur


def _first_turn(v: Any, field: str) -> str:
    if not isinstance(v, list) or not v:
        got = "an empty list" if v == [] else type_name(v)
        raise RecordError(f"expected a non-empty list of strings, got {got}", field=field)
    return string(v[0], f"{field}[0]")


def field_text(rec: dict[str, Any], text_field: str) -> str:
    """The prompt in the field the user named (dotted; a list gives its first item)."""
    v = _dotted(rec, text_field)
    return _first_turn(v, text_field) if isinstance(v, list) else string(v, text_field)


def prompt_text(rec: dict[str, Any]) -> str:
    """The prompt of a prompt record: the first of SEED_KEYS it has."""
    for key in SEED_KEYS:
        if key not in rec:
            continue
        if key == "instruction":
            return alpaca_prompt(rec)
        if key == "turns":
            return _first_turn(rec[key], key)
        return string(rec[key], key)
    keys = ", ".join(map(str, list(rec)[:12])) or "none"
    raise RecordError(
        f"no prompt field: expected one of {', '.join(SEED_KEYS)} or a conversation; the record has keys: "
        f"{keys} (name the field with --text-field)"
    )


#: The rule of a record no conversation reader knows, and of formats whose records are prompts.
PROMPT_FIELDS = SeedRule(prompt_text)


def first_user_turn(name: str, parse: Callable[[Any], list[Conversation]]) -> SeedRule:
    """The rule of a conversation format: the first user turn of what `parse` reads."""

    def text(rec: dict[str, Any]) -> str:
        for conv in parse(rec):
            for m in conv.messages:
                if m.role == "user":
                    return m.content
        raise RecordError(f"a {name} conversation without a user turn")

    return SeedRule(text)
