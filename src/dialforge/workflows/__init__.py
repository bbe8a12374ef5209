"""Workflow graphs, real-schema importers, the self-talk loop and the subgoal tracker."""

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, __file__)
