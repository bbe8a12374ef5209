"""LLM backends behind one async protocol, plus cache, usage and structured output."""

from .cache import CallCache, request_key
from .client import LLM, StructuredResult
from .config import BackendConfig, make_backend
from .structured import parse_structured, strict_schema
from .types import ChatModel, ChatRequest, Completion, SamplingParams, Usage
from .usage import UsageTracker

__all__ = [
    "LLM",
    "BackendConfig",
    "CallCache",
    "ChatModel",
    "ChatRequest",
    "Completion",
    "SamplingParams",
    "StructuredResult",
    "Usage",
    "UsageTracker",
    "make_backend",
    "parse_structured",
    "request_key",
    "strict_schema",
]
