"""LLM backends behind one async protocol, plus cache, usage and structured output."""

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, __file__)
