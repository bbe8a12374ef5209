# The names `agentic/__init__.py` exports, each loaded on first use (dialforge/_lazy.py).
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
