"""Dialogue, seed and intent files in every common format (see `registry.FORMATS`), streamed,
with errors that name file, line and field."""

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, __file__)
