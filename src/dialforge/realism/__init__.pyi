# The names `realism/__init__.py` exports, each loaded on first use (dialforge/_lazy.py):
# the measuring code imports scikit-learn (seconds).
from .card import RealismCard
from .config import RealismConfig
from .measure import realism
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
