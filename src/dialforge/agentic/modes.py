"""Agentic self-talk's simulator mode, registered by the package that owns it: the registry
(simulate/modes.py) imports this module by name on its first lookup. It imports no engine:
the customer (agentic/policy.py) is built only when a run opens."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..simulate.modes import ModeConfig, SimulatorMode, register_mode

if TYPE_CHECKING:
    from ..llm.client import LLM
    from ..simulate.contracts import UserSimulator


def _build_goal_user(cfg: ModeConfig, llm: LLM, judge: LLM | None) -> UserSimulator:
    from .policy import GoalUser

    return GoalUser(llm, cfg.stop.end_token)


register_mode(
    SimulatorMode[ModeConfig](
        "agentic",
        "a customer with a hidden goal drawn from a database row, revealed in pieces, ending with a stop "
        "token; the agent calls tools on the conversation's own database copy (agentic/)",
        _build_goal_user,
        commands=("agent",),
    )
)
