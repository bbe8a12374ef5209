# The names `pipeline/__init__.py` exports, each loaded on first use (dialforge/_lazy.py).
from .config import (
    DedupStage,
    PipelineConfig,
    RealismStage,
    SimulateStage,
    SimulatorSpec,
    StrategyStage,
    TrainSimulatorStage,
    TrainStage,
    simulate_configs,
)
from .run import PipelineRun, run_pipeline, run_pipeline_async
from .validate import check_simulators, validate_pipeline

__all__ = [
    "DedupStage",
    "PipelineConfig",
    "PipelineRun",
    "RealismStage",
    "SimulateStage",
    "SimulatorSpec",
    "StrategyStage",
    "TrainSimulatorStage",
    "TrainStage",
    "check_simulators",
    "run_pipeline",
    "run_pipeline_async",
    "simulate_configs",
    "validate_pipeline",
]
