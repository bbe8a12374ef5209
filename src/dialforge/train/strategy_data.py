"""Strategy-conditioned simulator data (IDEAS): the system prompt lists N candidate
strategies (the right one always among them, order shuffled with a recorded seed); the
target user turn is the strategy, then the instruction; the loss is on that turn only."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from ..conversation import stable_hash
from ..errors import DialforgeError, RecordError

STRATEGY_MARK = "【instructional strategy】"
INSTRUCTION_MARK = "【instruction】"
CANDIDATES_HEADER = (
    "You are the user in this dialogue. Choose one of these instruction strategies "
    "and write your next message following it:\n"
)


def format_target(strategy: str, instruction: str) -> str:
    return f"{STRATEGY_MARK}{strategy}{INSTRUCTION_MARK}{instruction}"


def parse_target(text: str) -> tuple[str, str] | None:
    """(strategy, instruction) from a trained simulator's output, or None."""
    if STRATEGY_MARK not in text or INSTRUCTION_MARK not in text:
        return None
    rest = text.split(STRATEGY_MARK, 1)[1]
    strategy, instruction = rest.split(INSTRUCTION_MARK, 1)
    return strategy.strip(), instruction.strip()


def candidates_prompt(candidates: list[str]) -> str:
    return CANDIDATES_HEADER + "\n".join(f"{i}. {c}" for i, c in enumerate(candidates, 1))


def strategy_conditioned(
    records: list[dict[str, Any]], all_strategies: list[str], n_candidates: int = 50, seed: int = 0
) -> list[dict[str, Any]]:
    """Training conversations (OpenAI messages, user/assistant as in the real dialogue) from
    labelled extraction records (`history`, `instruction`, `strategy_text`). The candidate
    order's seed is recorded in each example's meta."""
    out = []
    pool = sorted(set(all_strategies))
    for r in records:
        gold = r["strategy_text"]
        ex_seed = int(stable_hash(seed, r["id"]), 16) % 2**31
        rng = random.Random(ex_seed)
        others = [s for s in pool if s != gold]
        cands = rng.sample(others, min(len(others), n_candidates - 1)) + [gold]
        rng.shuffle(cands)
        messages = (
            [{"role": "system", "content": candidates_prompt(cands)}]
            + list(r["history"])
            + [{"role": "user", "content": format_target(gold, r["instruction"])}]
        )
        out.append(
            {
                "id": r["id"],
                "messages": messages,
                "meta": {"candidate_seed": ex_seed, "gold_index": cands.index(gold), "candidates": cands},
            }
        )
    return out


_LABELLED = {"id": str, "instruction": str, "strategy_text": str, "history": list}


def read_labelled(paths: list[str]) -> list[dict[str, Any]]:
    """Records labelled by `strategies assign`, each checked so a plain dialogue file or an
    unlabelled extraction record is named by file, line and field, not a KeyError."""
    from ..io._records import iter_records

    out = []
    for p in paths:
        for rec, line, index in iter_records(Path(p)):
            if isinstance(rec, RecordError):
                raise rec
            if not isinstance(rec, dict):
                raise RecordError("expected a labelled record (an object)", path=p, line=line, index=index)
            for field, typ in _LABELLED.items():
                if not isinstance(rec.get(field), typ):
                    hint = " (label extraction records with `dialforge strategies assign` first)"
                    what = "missing" if field not in rec else f"expected {typ.__name__}"
                    raise RecordError(
                        what + (hint if field == "strategy_text" else ""), path=p, line=line, index=index, field=field
                    )
            for i, m in enumerate(rec["history"]):
                if not (isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)):
                    raise RecordError(
                        "expected messages with string role and content",
                        path=p,
                        line=line,
                        index=index,
                        field=f"history[{i}]",
                    )
            out.append(rec)
    if not out:
        raise DialforgeError(f"{', '.join(paths)}: no labelled records")
    return out
