"""Checks that need no model, by the names callers import: the generic ones (`checks.py`) and
the pipeline's (`pipeline/validate.py`, beside its config, loaded on first use: a command that
checks its inputs does not load the pipeline's config). Nothing is defined here."""

from __future__ import annotations

from typing import Any

from .checks import check_dialogues, check_filter, check_inputs, known_filter_fields

__all__ = ["check_dialogues", "check_filter", "check_inputs", "known_filter_fields"]
_PIPELINE = ("check_simulators", "validate_pipeline")  # also found here, from pipeline/validate.py


def __getattr__(name: str) -> Any:
    if name in _PIPELINE:
        from .pipeline import validate

        return getattr(validate, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
