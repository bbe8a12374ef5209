"""Self-talk's simulator mode, registered by the package that owns it: the registry
(simulate/modes.py) imports this module by name on its first lookup. It imports no engine:
the client is built (workflows/agent.py) only when a self-talk loop opens."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..simulate.modes import ModeConfig, SimulatorMode, register_mode

if TYPE_CHECKING:
    from ..llm.client import LLM
    from ..simulate.contracts import UserSimulator


def _build_client(cfg: ModeConfig, llm: LLM, judge: LLM | None) -> UserSimulator:
    from .agent import client_simulator

    return client_simulator(cfg, llm)


register_mode(
    SimulatorMode[ModeConfig](
        "selftalk",
        "Self-Talk's client: a character with a persona and an intent talking to a workflow agent",
        _build_client,
        commands=("selftalk",),
    )
)
