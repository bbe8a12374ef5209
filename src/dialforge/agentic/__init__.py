"""Agentic self-talk: an agent that calls real tools on a real database, a customer with a
hidden goal, success checked on the final state (tau2-bench style), function-calling
training data out. See docs/agentic.md.

    from dialforge.agentic import AgentToolsConfig, agentic
    summary = agentic(AgentToolsConfig(user=..., agent=...), "runs/agent")
"""

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, __file__)
