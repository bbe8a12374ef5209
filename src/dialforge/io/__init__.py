"""Dialogue, seed and intent files in every common format (see `registry.FORMATS`), streamed,
with errors that name file, line and field."""

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
