"""Why a conversation ended (`dialforge/termination.py`, a leaf that `run/health.py` reads
too): the names simulate/ and the modes built on it import from here."""

from __future__ import annotations

from ..termination import CLOSING, FAILURE, RESAMPLE, Termination

__all__ = ["CLOSING", "FAILURE", "RESAMPLE", "Termination"]
