"""Run directories (manifest, lock, resumable outputs, cache, usage) and the stage kernel."""

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, __file__)
