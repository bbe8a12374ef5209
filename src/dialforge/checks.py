"""Checks that need no model, run before the first LLM request: a typo in a seed path or a
filter must fail in a second with the file and field path, not after hours of simulation."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel

from .config import blame, iter_inputs
from .errors import ConfigError, DialforgeError

# meta fields every simulated conversation carries (a filter may use them besides the scores)
SIMULATE_META = frozenset(
    {"mode", "seed_id", "sample_index", "simulator_model", "assistant_model", "termination_reason", "persona", "error"}
)


def check_inputs(config: BaseModel, source: str, origins: dict[str, str] | None = None) -> None:
    """Every INPUT_FILE of a config exists and is readable; one line names them all, each
    blamed on the config file `source` or on the flag / `--set` in `origins` that gave it."""
    problems = []
    for where, path in iter_inputs(config):
        p = Path(path)
        if not p.exists():
            problems.append((where, f"field '{where}': {path}: no such file or folder"))
        elif not os.access(p, os.R_OK):
            problems.append((where, f"field '{where}': {path}: not readable"))
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ConfigError("; ".join(f"{blame(w, source, origins)}: {m}" for w, m in problems[:3]) + more)


def known_filter_fields(judge: bool = False) -> set[str]:
    """Names a filter expression may use: what `score` writes per conversation plus the meta
    every simulated conversation has (the metric registry when there is one)."""
    try:
        from .score.registry import conversation_fields  # type: ignore[import-not-found,unused-ignore]

        names = set(conversation_fields())
    except ImportError:
        from .conversation import Conversation, Message
        from .score.scoring import conversation_scores

        probe = Conversation(
            id="probe",
            messages=[Message(role="user", content="a b"), Message(role="assistant", content="c d")],
            meta={"workflow_eval": {"depth": 1, "relative_depth": 1.0, "success": True}},
        )
        names = set(conversation_scores(probe)) | {"strategies"}
    names |= SIMULATE_META
    if judge:
        from .score.judge import QuestionQuality

        names |= {f"judge_{k}" for k in (*QuestionQuality.model_fields, "mean", "error")}
    return names


def check_filter(expression: str, source: str, field: str = "filter", judge: bool = False) -> None:
    from .score.select import Expression

    try:
        Expression(expression).check_names(known_filter_fields(judge))
    except DialforgeError as e:
        raise ConfigError(f"{source}: field '{field}': {e}") from None


def check_dialogues(path: str, fmt: str, source: str, field: str) -> None:
    """The first record of a dialogue file reads as a conversation in `fmt`."""
    from .io.reader import iter_conversations

    try:
        next(iter(iter_conversations(path, fmt, on_error="fail")), None)
    except DialforgeError as e:
        raise ConfigError(f"{source}: field '{field}': {e}") from None
