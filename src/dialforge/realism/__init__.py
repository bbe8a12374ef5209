"""Simulator realism: how much do simulated users look like real ones? (docs/realism.md)"""

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, __file__)
