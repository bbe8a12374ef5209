"""Dialogue file formats: OpenAI messages (canonical), ShareGPT, OASST trees, HF datasets."""

from .reader import (
    READ_FORMATS,
    WRITE_FORMATS,
    ReadReport,
    atomic_write_bytes,
    read_conversations,
    read_texts,
    write_conversations,
)

__all__ = [
    "READ_FORMATS",
    "WRITE_FORMATS",
    "ReadReport",
    "atomic_write_bytes",
    "read_conversations",
    "read_texts",
    "write_conversations",
]
