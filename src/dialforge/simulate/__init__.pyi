# The names `simulate/__init__.py` exports, each loaded on first use (dialforge/_lazy.py).
from .config import SeedConfig, SimulateConfig, StopConfig, StrategyConfig
from .engine import Engine, load_seeds
from .run import SimulateStage, simulate, simulate_async
from .simulators import PromptedUser, StrategyUser, TrainedUser, make_simulator, swap_roles

__all__ = [
    "Engine",
    "PromptedUser",
    "SeedConfig",
    "SimulateConfig",
    "SimulateStage",
    "StopConfig",
    "StrategyConfig",
    "StrategyUser",
    "TrainedUser",
    "load_seeds",
    "make_simulator",
    "simulate",
    "simulate_async",
    "swap_roles",
]
