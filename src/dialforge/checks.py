"""Checks that need no model, run before the first LLM request: a typo in a seed path or a
filter must fail in a second with the file and field path, not after hours of simulation."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel

from .config import blame, iter_inputs
from .errors import ConfigError, DialforgeError


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
    """Names a pipeline's filter may use: what `score` writes per conversation plus the meta
    every simulated conversation has (`score.registry.filter_names`), and with a judge every
    field of its verdict."""
    from .score.registry import filter_names

    return filter_names(simulated_only=True) | (_judge_fields() if judge else set())


def _judge_fields() -> set[str]:
    from .score.judge import QuestionQuality

    return {f"judge_{k}" for k in (*QuestionQuality.model_fields, "mean", "error")}


def check_filter(expression: str, source: str, field: str = "filter", judge: bool = False) -> None:
    """The filter parses and names only known fields (`score.select.validate_filter`, the one
    check `dialforge filter` runs too), else a ConfigError naming `source` and `field`."""
    from .score.select import validate_filter

    try:
        validate_filter(expression, _judge_fields() if judge else (), simulated_only=True)
    except DialforgeError as e:
        raise ConfigError(f"{source}: field '{field}': {e}") from None


def check_dialogues(path: str, fmt: str, source: str, field: str) -> None:
    """The first record of a dialogue file reads as a conversation in `fmt`."""
    from .io.reader import iter_conversations

    try:
        next(iter(iter_conversations(path, fmt, on_error="fail")), None)
    except DialforgeError as e:
        raise ConfigError(f"{source}: field '{field}': {e}") from None
