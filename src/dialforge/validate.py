"""Checks that need no model, run before the first LLM request: a typo in a seed path or a
filter must fail in a second with the file and field path, not after hours of simulation."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from .config import blame, iter_inputs
from .errors import ConfigError, DialforgeError

if TYPE_CHECKING:
    from .pipeline import PipelineConfig

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


def validate_pipeline(cfg: PipelineConfig, source: str, origins: dict[str, str] | None = None) -> None:
    """Inputs present, seeds readable, library loadable, filter known: before any model call.
    Errors name the config file `source`, or the flag / `--set` in `origins` that gave the value."""
    from .simulate.engine import load_seeds

    def at(field: str) -> str:
        return blame(field, source, origins)

    check_inputs(cfg, source, origins)
    try:
        load_seeds(cfg.simulate.seeds)
    except DialforgeError as e:
        raise ConfigError(f"{at('simulate.seeds')}: field 'simulate.seeds': {e}") from None
    for i, spec in enumerate(cfg.simulate.simulators):
        if spec.seeds is not None:
            where = f"simulate.simulators.{i}.seeds"
            try:
                load_seeds(spec.seeds)
            except DialforgeError as e:
                raise ConfigError(f"{at(where)}: field '{where}': {e}") from None
    libraries = [("library", cfg.library)] + [
        (f"simulate.simulators.{i}.strategy.library", getattr(getattr(s, "strategy", None), "library", None))
        for i, s in enumerate(cfg.simulate.simulators)
    ]
    for where, lib in libraries:
        if lib:
            from .induce.library import StrategyLibrary

            try:
                StrategyLibrary.load(lib)
            except DialforgeError as e:  # names the file and what is wrong with it
                raise ConfigError(f"{at(where)}: field '{where}': {e}") from None
            except (OSError, ValueError) as e:
                raise ConfigError(f"{at(where)}: field '{where}': {lib}: not a strategy library ({e})") from None
    if cfg.filter:
        check_filter(cfg.filter, at("filter"), judge=cfg.score.judge is not None)
    check_simulators(cfg, source)
    if cfg.realism is not None and cfg.realism.real:
        check_dialogues(cfg.realism.real, cfg.realism.real_format, at("realism.real"), "realism.real")
    if cfg.train is not None or cfg.train_simulator is not None:  # not after every simulation
        from .train.trainer import check_train_extra

        try:
            check_train_extra()
        except DialforgeError as e:
            raise ConfigError(f"{at('train')}: field 'train': {e}") from None


def check_dialogues(path: str, fmt: str, source: str, field: str) -> None:
    """The first record of a dialogue file reads as a conversation in `fmt`."""
    from .io.reader import iter_conversations

    try:
        next(iter(iter_conversations(path, fmt, on_error="fail")), None)
    except DialforgeError as e:
        raise ConfigError(f"{source}: field '{field}': {e}") from None


def check_simulators(cfg: PipelineConfig, source: str) -> None:
    """Each simulator's full SimulateConfig builds (its mode's own checks included)."""
    from pydantic import ValidationError

    from .config import format_validation_error
    from .pipeline import simulate_configs

    library = cfg.library or ("<induce>/library.json" if cfg.induce else None)
    for i, spec in enumerate(cfg.simulate.simulators):
        one = cfg.model_copy(update={"simulate": cfg.simulate.model_copy(update={"simulators": [spec]})})
        try:
            simulate_configs(one, cfg.model, library)
        except ValidationError as e:
            raise ConfigError(format_validation_error(e, f"{source}: simulate.simulators.{i} ({spec.name})")) from None
