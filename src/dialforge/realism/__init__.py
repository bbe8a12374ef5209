"""Simulator realism: how much do simulated users look like real ones? (docs/realism.md)"""

from .card import RealismCard
from .measure import RealismConfig, realism
from .split import split_heldout, split_heldout_file
from .stage import read_card, realism_floor, realism_stage, write_card

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
