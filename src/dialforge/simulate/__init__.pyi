# The names `simulate/__init__.py` exports, each loaded on first use (dialforge/_lazy.py).
from .config import SeedConfig, SimulateConfig, StopConfig, StrategyConfig
from .contracts import AssistantPolicy, AssistantTurn, ConvState, UserSimulator, UserTurn, sample_index
from .engine import Engine, load_seeds
from .modes import SimulatorMode, get_mode, make_simulator, mode_names, register_mode
from .run import SimulateStage, simulate, simulate_async
from .simulators import PromptedUser, StrategyUser, TrainedUser, swap_roles

__all__ = [
    "AssistantPolicy",
    "AssistantTurn",
    "ConvState",
    "Engine",
    "PromptedUser",
    "SeedConfig",
    "SimulateConfig",
    "SimulateStage",
    "StopConfig",
    "StrategyConfig",
    "StrategyUser",
    "SimulatorMode",
    "TrainedUser",
    "UserSimulator",
    "UserTurn",
    "get_mode",
    "load_seeds",
    "make_simulator",
    "mode_names",
    "register_mode",
    "sample_index",
    "simulate",
    "simulate_async",
    "swap_roles",
]
