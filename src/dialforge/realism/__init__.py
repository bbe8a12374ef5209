"""Simulator realism: how much do simulated users look like real ones? (docs/realism.md)"""

from __future__ import annotations

import importlib
from typing import Any

from .config import RealismConfig

# the measuring code imports scikit-learn (seconds): loaded on first use, not with the package
_LAZY = {
    "RealismCard": "card",
    "realism": "measure",
    "split_heldout": "split",
    "split_heldout_file": "split",
    "read_card": "stage",
    "realism_floor": "stage",
    "realism_stage": "stage",
    "write_card": "stage",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "RealismCard",
    "RealismConfig",
    "read_card",
    "realism",
    "realism_floor",
    "realism_stage",
    "split_heldout",
    "split_heldout_file",
    "write_card",
]
