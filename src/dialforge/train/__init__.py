"""Role-masked SFT for user simulators and chat models."""

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, __file__)
