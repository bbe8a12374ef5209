"""`dialforge run CONFIG`: the whole pipeline. Its config is data (`config.py`), checked
before any model call (`validate.py`) and run by `run.py`."""

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, __file__)
