"""The modes of `simulate` and `run`: strategy (IDEAS), socratic and persona. Registered
when the registry first looks a mode up (simulate/modes.py, `PROVIDERS`); no engine is
imported until a builder runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .modes import SimulateModeConfig, SimulatorMode, register_mode

if TYPE_CHECKING:
    from ..llm.client import LLM
    from .contracts import UserSimulator


def _build_strategy(cfg: SimulateModeConfig, llm: LLM, judge: LLM | None) -> UserSimulator:
    from .simulators import StrategyUser

    assert cfg.strategy is not None
    return StrategyUser(
        llm,
        cfg.strategy,
        judge,
        trained=cfg.user_format == "trained",
        stop=cfg.stop,
        tokenizer=cfg.user_tokenizer,
    )


def _check_strategy(cfg: SimulateModeConfig) -> str | None:
    if cfg.strategy is None:
        return "mode strategy needs a `strategy:` section with the library path"
    if cfg.seeds.free:
        return "strategy mode follows up an answer: use questions or exchanges as seeds"
    return None


def _prompted(default_system: str) -> Callable[[SimulateModeConfig, LLM, LLM | None], UserSimulator]:
    def build(cfg: SimulateModeConfig, llm: LLM, judge: LLM | None) -> UserSimulator:
        from . import simulators

        if cfg.user_format == "trained":
            return simulators.TrainedUser(llm, cfg.user_system_prompt, cfg.user_tokenizer)
        system = cfg.user_system_prompt or getattr(simulators, default_system)
        return simulators.PromptedUser(llm, system, cfg.stop.end_token)

    return build


def _check_persona(cfg: SimulateModeConfig) -> str | None:
    return None if cfg.personas else "mode persona needs a list of `personas`"


register_mode(
    SimulatorMode[SimulateModeConfig](
        "strategy",
        "IDEAS deduction: the simulator picks an instruction strategy from an induced library for the "
        "last answer and writes the next instruction; quality control resamples rejected ones",
        _build_strategy,
        _check_strategy,
    )
)
register_mode(
    SimulatorMode[SimulateModeConfig](
        "socratic",
        "a curious, demanding user who asks deeper follow-ups (or a trained PlatoLM simulator)",
        _prompted("SOCRATIC_SYSTEM"),
    )
)
register_mode(
    SimulatorMode[SimulateModeConfig](
        "persona",
        "a prompted user with a persona drawn from `personas` (UltraChat/CAMEL style)",
        _prompted("PERSONA_SYSTEM"),
        _check_persona,
    )
)
