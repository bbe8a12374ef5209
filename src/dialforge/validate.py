"""Checks that need no model, by the names callers import: the generic ones (`checks.py`) and
the pipeline's (`pipeline/validate.py`, beside its config). Nothing is defined here."""

from __future__ import annotations

from .checks import check_dialogues, check_filter, check_inputs, known_filter_fields
from .pipeline.validate import check_simulators, validate_pipeline

__all__ = [
    "check_dialogues",
    "check_filter",
    "check_inputs",
    "check_simulators",
    "known_filter_fields",
    "validate_pipeline",
]
