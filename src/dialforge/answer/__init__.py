"""`dialforge answer`: answer seed questions with any backend, resumably (`run.py`); its
config is data (`config.py`)."""

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, __file__)
