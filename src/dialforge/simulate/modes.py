"""The simulator-mode registry: every user-simulator mode is registered here once, with
what the CLI, the configs and the docs need (its description, which commands offer it, how
to check a config for it, how to build it). `SimulateConfig.mode`, `dialforge modes` and
the pipeline's simulators read it.

Add a mode: write a `UserSimulator` (simulate/simulators.py), then
`register_mode(SimulatorMode(name, description, build, check))` below or from your own
module, imported before configs are validated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..llm.client import LLM
    from .simulators import UserSimulator


@dataclass(frozen=True)
class SimulatorMode:
    name: str
    description: str
    # (the command's config, the user role's LLM, an optional judge LLM) -> the simulator
    build: Callable[[Any, LLM, LLM | None], UserSimulator]
    # a problem with the command's config for this mode (one line), or None
    check: Callable[[Any], str | None] = lambda cfg: None
    commands: tuple[str, ...] = ("simulate", "run")


MODES: dict[str, SimulatorMode] = {}


def register_mode(mode: SimulatorMode) -> SimulatorMode:
    if mode.name in MODES:
        raise ValueError(f"simulator mode {mode.name!r} is already registered")
    MODES[mode.name] = mode
    return mode


def mode_names(command: str | None = None) -> list[str]:
    return [m.name for m in MODES.values() if command is None or command in m.commands]


def get_mode(name: str, command: str | None = None) -> SimulatorMode:
    """The registered mode, or a ValueError naming the modes `command` offers."""
    mode = MODES.get(name)
    if mode is None or (command is not None and command not in mode.commands):
        known = ", ".join(mode_names(command))
        raise ValueError(f"unknown simulator mode {name!r} (known: {known})")
    return mode


# -- the built-in modes ------------------------------------------------------------------


def _build_strategy(cfg: Any, llm: LLM, judge: LLM | None) -> UserSimulator:
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


def _check_strategy(cfg: Any) -> str | None:
    if cfg.strategy is None:
        return "mode strategy needs a `strategy:` section with the library path"
    if cfg.seeds.free:
        return "strategy mode follows up an answer: use questions or exchanges as seeds"
    return None


def _prompted(default_system: str) -> Callable[[Any, LLM, LLM | None], UserSimulator]:
    def build(cfg: Any, llm: LLM, judge: LLM | None) -> UserSimulator:
        from . import simulators

        if cfg.user_format == "trained":
            return simulators.TrainedUser(llm, cfg.user_system_prompt, cfg.user_tokenizer)
        system = cfg.user_system_prompt or getattr(simulators, default_system)
        return simulators.PromptedUser(llm, system, cfg.stop.end_token)

    return build


def _build_client(cfg: Any, llm: LLM, judge: LLM | None) -> UserSimulator:
    from ..workflows.agent import client_simulator

    return client_simulator(cfg, llm)


def _build_goal_user(cfg: Any, llm: LLM, judge: LLM | None) -> UserSimulator:
    from ..agentic.policy import GoalUser

    return GoalUser(llm, cfg.stop.end_token)


register_mode(
    SimulatorMode(
        "strategy",
        "IDEAS deduction: the simulator picks an instruction strategy from an induced library for the "
        "last answer and writes the next instruction; quality control resamples rejected ones",
        _build_strategy,
        _check_strategy,
    )
)
register_mode(
    SimulatorMode(
        "socratic",
        "a curious, demanding user who asks deeper follow-ups (or a trained PlatoLM simulator)",
        _prompted("SOCRATIC_SYSTEM"),
    )
)
register_mode(
    SimulatorMode(
        "persona",
        "a prompted user with a persona drawn from `personas` (UltraChat/CAMEL style)",
        _prompted("PERSONA_SYSTEM"),
        lambda cfg: None if cfg.personas else "mode persona needs a list of `personas`",
    )
)
register_mode(
    SimulatorMode(
        "selftalk",
        "Self-Talk's client: a character with a persona and an intent talking to a workflow agent",
        _build_client,
        commands=("selftalk",),
    )
)
register_mode(
    SimulatorMode(
        "agentic",
        "a customer with a hidden goal drawn from a database row, revealed in pieces, ending with a stop "
        "token; the agent calls tools on the conversation's own database copy (agentic/)",
        _build_goal_user,
        commands=("agent",),
    )
)
