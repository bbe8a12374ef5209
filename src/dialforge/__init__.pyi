# The names `dialforge/__init__.py` exports, each loaded on first use (_lazy.py).
from ._version import __version__
from .answer import AnswerConfig, answer, answer_async
from .config import fingerprint_data, load_config
from .conversation import Conversation, Message, stable_hash
from .errors import ConfigError, DialforgeError, RecordError, RunDirConflict
from .induce import InduceConfig, StrategyLibrary, induce, induce_async
from .io import ReadReport, read_conversations, read_texts, write_conversations
from .llm import (
    LLM,
    BackendConfig,
    BackendPool,
    CallCache,
    ChatModel,
    ChatRequest,
    Completion,
    HTTPBackendConfig,
    SamplingParams,
    ScriptedBackendConfig,
    TransformersBackendConfig,
    UsageTracker,
    backend_config,
    make_backend,
)
from .llm.client import run_sync
from .pipeline import PipelineConfig, run_pipeline, run_pipeline_async
from .report import write_report
from .run import RunDir
from .score import MTBenchConfig, ScoreConfig, dedup, export, filter_conversations, mt_bench, score
from .simulate import SeedConfig, SimulateConfig, StopConfig, StrategyConfig, simulate, simulate_async
from .stats import conversation_stats
from .train import TrainConfig, train
from .workflows import SelfTalkConfig, selftalk, selftalk_async

__all__ = [
    "LLM",
    "AnswerConfig",
    "BackendConfig",
    "BackendPool",
    "CallCache",
    "ChatModel",
    "ChatRequest",
    "Completion",
    "ConfigError",
    "Conversation",
    "DialforgeError",
    "HTTPBackendConfig",
    "InduceConfig",
    "MTBenchConfig",
    "Message",
    "PipelineConfig",
    "ReadReport",
    "RecordError",
    "RunDir",
    "RunDirConflict",
    "SamplingParams",
    "ScoreConfig",
    "ScriptedBackendConfig",
    "SeedConfig",
    "SelfTalkConfig",
    "SimulateConfig",
    "StopConfig",
    "StrategyConfig",
    "StrategyLibrary",
    "TrainConfig",
    "TransformersBackendConfig",
    "UsageTracker",
    "__version__",
    "answer",
    "answer_async",
    "backend_config",
    "conversation_stats",
    "dedup",
    "export",
    "filter_conversations",
    "fingerprint_data",
    "induce",
    "induce_async",
    "load_config",
    "make_backend",
    "mt_bench",
    "read_conversations",
    "read_texts",
    "run_pipeline",
    "run_pipeline_async",
    "run_sync",
    "score",
    "selftalk",
    "selftalk_async",
    "simulate",
    "simulate_async",
    "stable_hash",
    "train",
    "write_conversations",
    "write_report",
]
