"""The pipeline's checks that need no model, run before the first LLM request (beside its
config): inputs present, seeds readable, libraries loadable, the filter's names known, each
simulator's full SimulateConfig valid. Errors name the config file and the field path."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import ValidationError

from ..checks import check_dialogues, check_filter, check_inputs
from ..config import blame, format_validation_error
from ..errors import ConfigError, DialforgeError
from .config import PipelineConfig, simulate_configs


def validate_pipeline(cfg: PipelineConfig, source: str, origins: dict[str, str] | None = None) -> None:
    """Inputs present, seeds readable, library loadable, filter known: before any model call.
    Errors name the config file `source`, or the flag / `--set` in `origins` that gave the value."""

    def at(field: str) -> str:
        return blame(field, source, origins)

    check_inputs(cfg, source, origins)
    _check_seeds(cfg, at)
    _check_libraries(cfg, at)
    if cfg.filter:
        check_filter(cfg.filter, at("filter"), judge=cfg.score.judge is not None)
    check_simulators(cfg, source)
    if cfg.realism is not None and cfg.realism.real:
        check_dialogues(cfg.realism.real, cfg.realism.real_format, at("realism.real"), "realism.real")
    if cfg.train is not None or cfg.train_simulator is not None:  # not after every simulation
        from ..train.trainer import check_train_extra

        try:
            check_train_extra()
        except DialforgeError as e:
            raise ConfigError(f"{at('train')}: field 'train': {e}") from None


def _check_seeds(cfg: PipelineConfig, at: Callable[[str], str]) -> None:
    """The stage's seeds and each simulator's own read."""
    from ..simulate.engine import load_seeds

    seeds = [("simulate.seeds", cfg.simulate.seeds)] + [
        (f"simulate.simulators.{i}.seeds", s.given().get("seeds")) for i, s in enumerate(cfg.simulate.simulators)
    ]
    for where, seed in seeds:
        if seed is not None:
            try:
                load_seeds(seed)
            except DialforgeError as e:
                raise ConfigError(f"{at(where)}: field '{where}': {e}") from None


def _check_libraries(cfg: PipelineConfig, at: Callable[[str], str]) -> None:
    """The pipeline's library and each simulator's own load."""
    libraries = [("library", cfg.library)] + [
        (f"simulate.simulators.{i}.strategy.library", s.strategy.library if s.strategy else None)
        for i, s in enumerate(cfg.simulate.simulators)
    ]
    for where, lib in libraries:
        if lib:
            from ..induce.library import StrategyLibrary

            try:
                StrategyLibrary.load(lib)
            except DialforgeError as e:  # names the file and what is wrong with it
                raise ConfigError(f"{at(where)}: field '{where}': {e}") from None
            except (OSError, ValueError) as e:
                raise ConfigError(f"{at(where)}: field '{where}': {lib}: not a strategy library ({e})") from None


def check_simulators(cfg: PipelineConfig, source: str) -> None:
    """Each simulator's full SimulateConfig builds (its mode's own checks included)."""
    library = cfg.library or ("<induce>/library.json" if cfg.induce else None)
    for i, spec in enumerate(cfg.simulate.simulators):
        one = cfg.model_copy(update={"simulate": cfg.simulate.model_copy(update={"simulators": [spec]})})
        try:
            simulate_configs(one, cfg.model, library)
        except ValidationError as e:
            raise ConfigError(format_validation_error(e, f"{source}: simulate.simulators.{i} ({spec.name})")) from None
