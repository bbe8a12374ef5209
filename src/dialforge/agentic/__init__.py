"""Agentic self-talk: an agent that calls real tools on a real database, a customer with a
hidden goal, success checked on the final state (tau2-bench style), function-calling
training data out. See docs/agentic.md.

    from dialforge.agentic import AgentToolsConfig, agentic
    summary = agentic(AgentToolsConfig(user=..., agent=...), "runs/agent")
"""

from .config import AgentToolsConfig
from .database import Database, load_star_database
from .goals import TASKS, Goal, make_goals
from .run import agentic, agentic_async, build_world
from .success import pass_hat_k, replay, state_matches, verdict
from .tools import Tool, ToolBox, ToolResult, load_star_api, star_tool

__all__ = [
    "TASKS",
    "AgentToolsConfig",
    "Database",
    "Goal",
    "Tool",
    "ToolBox",
    "ToolResult",
    "agentic",
    "agentic_async",
    "build_world",
    "load_star_api",
    "load_star_database",
    "make_goals",
    "pass_hat_k",
    "replay",
    "star_tool",
    "state_matches",
    "verdict",
]
