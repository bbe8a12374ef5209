"""IDEAS induction: extract instruction strategies from real dialogues, cluster, abstract."""

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, __file__)
