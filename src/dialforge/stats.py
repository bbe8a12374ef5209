"""Summary statistics of a dialogue file (`dialforge stats`), in one streaming pass."""

from __future__ import annotations

import statistics
from array import array
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from .conversation import ROLES, Conversation


def plural(n: int, noun: str, many: str | None = None) -> str:
    """`1 user turn`, `2 user turns`."""
    return f"{n} {noun if n == 1 else many or noun + 's'}"


def _describe(xs: array[int]) -> dict[str, float]:
    if not xs:
        return {"mean": 0.0, "min": 0.0, "median": 0.0, "max": 0.0}
    return {"mean": round(statistics.fmean(xs), 3), "min": min(xs), "median": statistics.median(xs), "max": max(xs)}


def conversation_stats(
    convs: Iterable[Conversation], count_tokens: Callable[[str], int] | None = None
) -> dict[str, Any]:
    """Counts per dataset in one pass over `convs` (any iterable: a file streams). Lengths are
    whitespace words (`words`) unless a tokenizer counter is given (`tokens`)."""
    unit = "tokens" if count_tokens else "words"
    count = count_tokens or (lambda s: len(s.split()))
    chars: Counter[str] = Counter()
    lengths: Counter[str] = Counter()
    messages: Counter[str] = Counter()
    problems: Counter[str] = Counter()
    examples: list[dict[str, str]] = []
    turns, sizes = array("l"), array("l")
    with_problems = 0
    for c in convs:
        turns.append(c.n_user_turns)
        sizes.append(len(c.messages))
        for m in c.messages:
            messages[m.role] += 1
            chars[m.role] += len(m.content)
            lengths[m.role] += count(m.content)
        found = c.role_order_problems()
        with_problems += bool(found)
        for p in found:
            problems[p.split(" at position")[0]] += 1
            if len(examples) < 5:
                examples.append({"id": c.id, "problem": p})
    per_role = {
        r: {
            "messages": messages[r],
            "chars": chars[r],
            unit: lengths[r],
            "mean_chars": round(chars[r] / messages[r], 1) if messages[r] else 0.0,
        }
        for r in ROLES
        if messages[r]
    }
    return {
        "conversations": len(turns),
        "length_unit": unit,
        "user_turns_per_conversation": _describe(turns),
        "messages_per_conversation": _describe(sizes),
        "per_role": per_role,
        "role_order_problems": dict(problems),
        "conversations_with_problems": with_problems,
        "problem_examples": examples,
    }


def tokenizer_counter(name: str) -> Callable[[str], int]:
    """Token counts with a Hugging Face tokenizer (a path, a hub id, or `dialforge-tiny`)."""
    from transformers import AutoTokenizer

    from .errors import DialforgeError

    try:
        from .llm.config import resolve_model

        try:
            name = resolve_model(name)  # an embedded model's name is its cached folder
        except DialforgeError as e:
            raise DialforgeError(f"cannot load tokenizer {name!r}: {e}") from None
        tok = AutoTokenizer.from_pretrained(name)
    except DialforgeError:
        raise
    except Exception as e:  # transformers raises OSError, ValueError, ... for a bad name
        raise DialforgeError(f"cannot load tokenizer {name!r}: {str(e).splitlines()[0]}") from None

    def count(s: str) -> int:
        return len(tok(s, add_special_tokens=False)["input_ids"])

    return count
