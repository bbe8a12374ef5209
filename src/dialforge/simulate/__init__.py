"""Self-play: one async engine, user simulators for every mode."""

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, __file__)
