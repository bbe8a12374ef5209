"""The simulator-mode registry: every user-simulator mode is registered once, with what the
CLI, the configs and the docs need (its description, which commands offer it, how to check
a config for it, how to build it). `SimulateConfig.mode`, `dialforge modes` and the
pipeline's simulators read it.

A pure registry: it imports no mode. Each package registers its own modes in a small module
that imports no engine (its builders import their simulator when called):

    simulate/builtin_modes.py   strategy, socratic, persona   (`simulate`, `run`)
    workflows/modes.py          selftalk                      (`selftalk`)
    agentic/modes.py            agentic                       (`agent`)

Those modules are named in `PROVIDERS` and imported *by name* (importlib) on the first
lookup, so the registry finds the modes of packages built on simulate/ without simulate/
importing them: no import edge from the engine layer up to workflows/ or agentic/ (why not
entry points: they need an installed distribution's metadata, a source checkout on
PYTHONPATH has none, and the list of shipped modes is short and fixed). The first lookup
runs while `SimulateConfig` is defined (its `mode` help lists the modes), so a provider
imports only this module at load time: config and simulator types under TYPE_CHECKING, its
simulator inside the builder. A mode of your own: call `register_mode` from your module and
import it before configs are validated (or add it to `PROVIDERS` if it ships with dialforge).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from pydantic import BaseModel

if TYPE_CHECKING:
    from ..llm.client import LLM
    from .config import SeedConfig, SimulateConfig, StopConfig, StrategyConfig
    from .contracts import UserSimulator

# The modules that register the modes shipped with dialforge, imported in this order on the
# first lookup (the order of `dialforge modes` and of the mode lists in help and errors).
PROVIDERS = (
    "dialforge.simulate.builtin_modes",
    "dialforge.workflows.modes",
    "dialforge.agentic.modes",
)


class ModeConfig(Protocol):
    """What any mode's builder may read of its command's config (`SimulateConfig`,
    `SelfTalkConfig` and `AgentToolsConfig` all have these)."""

    @property
    def stop(self) -> StopConfig: ...

    @property
    def personas(self) -> list[str]: ...


class SimulateModeConfig(ModeConfig, Protocol):
    """What the modes of `simulate` and `run` read (`SimulateConfig` has it all)."""

    @property
    def seeds(self) -> SeedConfig: ...

    @property
    def user_format(self) -> str: ...

    @property
    def user_system_prompt(self) -> str | None: ...

    @property
    def user_tokenizer(self) -> str | None: ...

    @property
    def strategy(self) -> StrategyConfig | None: ...

    @property
    def options(self) -> dict[str, Any] | None: ...


C = TypeVar("C", bound=ModeConfig, contravariant=True)


def _no_problem(cfg: ModeConfig) -> str | None:
    return None


@dataclass(frozen=True)
class SimulatorMode(Generic[C]):
    """A mode: `build` and `check` read the config protocol `C` of the commands it serves."""

    name: str
    description: str
    # (the command's config, the user role's LLM, an optional judge LLM) -> the simulator
    build: Callable[[C, LLM, LLM | None], UserSimulator]
    # a problem with the command's config for this mode (one line), or None
    check: Callable[[C], str | None] = _no_problem
    commands: tuple[str, ...] = ("simulate", "run")
    # the mode's own parameters (`options:` of SimulateConfig and of a pipeline simulator),
    # checked as the config is validated; the builder reads them with `options_of`
    options: type[BaseModel] | None = None

    def options_of(self, cfg: Any) -> Any:
        """The config's `options:` as this mode's options model (its defaults where unset)."""
        if self.options is None:
            raise ValueError(f"simulator mode {self.name!r} takes no options")
        return self.options.model_validate(getattr(cfg, "options", None) or {})


_MODES: dict[str, SimulatorMode[Any]] = {}
_loaded = False


def _load_providers() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True  # first: a provider registering its mode calls back into this module
    try:
        for name in PROVIDERS:
            importlib.import_module(name)
    except BaseException:
        _loaded = False
        raise


def registry() -> dict[str, SimulatorMode[Any]]:
    """Every registered mode by name, in registration order (providers loaded)."""
    _load_providers()
    return _MODES


def register_mode(mode: SimulatorMode[Any]) -> SimulatorMode[Any]:
    if mode.name in _MODES:
        raise ValueError(f"simulator mode {mode.name!r} is already registered")
    _MODES[mode.name] = mode
    return mode


def mode_names(command: str | None = None) -> list[str]:
    return [m.name for m in registry().values() if command is None or command in m.commands]


def get_mode(name: str, command: str | None = None) -> SimulatorMode[Any]:
    """The registered mode, or a ValueError naming the modes `command` offers."""
    mode = registry().get(name)
    if mode is None or (command is not None and command not in mode.commands):
        known = ", ".join(mode_names(command))
        raise ValueError(f"unknown simulator mode {name!r} (known: {known})")
    return mode


def make_simulator(cfg: SimulateConfig, user_llm: LLM, judge: LLM | None = None) -> UserSimulator:
    """The user simulator of the config's mode."""
    mode: SimulatorMode[SimulateModeConfig] = get_mode(cfg.mode)  # mypy: SimulateConfig has what modes read
    return mode.build(cfg, user_llm, judge)
