# The names `io/__init__.py` exports, each loaded on first use (dialforge/_lazy.py).
from .intents import intents_for, read_intents
from .mapping import Mapping
from .reader import (
    READ_FORMATS,
    WRITE_FORMATS,
    ReadReport,
    atomic_write_bytes,
    detect_format,
    iter_conversations,
    read_conversations,
    read_texts,
    write_conversations,
)
from .registry import FORMATS, Format
from .seeds import read_seeds

__all__ = [
    "FORMATS",
    "READ_FORMATS",
    "WRITE_FORMATS",
    "Format",
    "Mapping",
    "ReadReport",
    "atomic_write_bytes",
    "detect_format",
    "intents_for",
    "iter_conversations",
    "read_conversations",
    "read_intents",
    "read_seeds",
    "read_texts",
    "write_conversations",
]
