"""Scoring, judged evaluation, filtering, dedup and export."""

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, __file__)
