# The names `train/__init__.py` exports, each loaded on first use (dialforge/_lazy.py).
from .config import TrainConfig
from .render import IGNORE, Example, RenderStats, RoleRenderer, swap_for_simulator
from .strategy_data import format_target, parse_target, strategy_conditioned
from .templates import TEMPLATES, get_template
from .trainer import build_examples, train

__all__ = [
    "IGNORE",
    "TEMPLATES",
    "Example",
    "RenderStats",
    "RoleRenderer",
    "TrainConfig",
    "build_examples",
    "format_target",
    "get_template",
    "parse_target",
    "strategy_conditioned",
    "swap_for_simulator",
    "train",
]
