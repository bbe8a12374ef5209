# The names `llm/__init__.py` exports, each loaded on first use (dialforge/_lazy.py).
from .cache import CallCache, request_key
from .client import LLM, StructuredResult
from .config import (
    BACKEND_KINDS,
    BackendConfig,
    HTTPBackendConfig,
    ScriptedBackendConfig,
    TransformersBackendConfig,
    backend_config,
)
from .pool import BackendPool, make_backend
from .structured import parse_structured, strict_schema
from .types import ChatModel, ChatRequest, Completion, SamplingParams, Usage
from .usage import UsageTracker

__all__ = [
    "BACKEND_KINDS",
    "LLM",
    "BackendConfig",
    "BackendPool",
    "CallCache",
    "ChatModel",
    "ChatRequest",
    "Completion",
    "HTTPBackendConfig",
    "SamplingParams",
    "ScriptedBackendConfig",
    "StructuredResult",
    "TransformersBackendConfig",
    "Usage",
    "UsageTracker",
    "backend_config",
    "make_backend",
    "parse_structured",
    "request_key",
    "strict_schema",
]
