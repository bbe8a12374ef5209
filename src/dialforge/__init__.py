"""dialforge: multi-turn instructional dialogue data by simulating the user."""

__version__ = "0.1.0"

from .conversation import Conversation, Message, stable_hash  # noqa: E402
from .errors import ConfigError, DialforgeError, RecordError, RunDirConflict  # noqa: E402
from .io import ReadReport, read_conversations, read_texts, write_conversations  # noqa: E402
from .llm import (  # noqa: E402
    LLM,
    BackendConfig,
    CallCache,
    ChatRequest,
    Completion,
    SamplingParams,
    UsageTracker,
    make_backend,
)
from .run import RunDir  # noqa: E402
from .stats import conversation_stats  # noqa: E402

__all__ = [
    "LLM",
    "BackendConfig",
    "CallCache",
    "ChatRequest",
    "Completion",
    "ConfigError",
    "Conversation",
    "DialforgeError",
    "Message",
    "ReadReport",
    "RecordError",
    "RunDir",
    "RunDirConflict",
    "SamplingParams",
    "UsageTracker",
    "__version__",
    "conversation_stats",
    "make_backend",
    "read_conversations",
    "read_texts",
    "stable_hash",
    "write_conversations",
]
