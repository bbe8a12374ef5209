# The names `io/__init__.py` exports, each loaded on first use (dialforge/_lazy.py).
from .files import atomic_write_bytes
from .intents import intents_for, read_intents
from .mapping import Mapping
from .output import write_conversations
from .reader import detect_format, iter_conversations, read_conversations, read_texts
from .registry import EXPORT_FORMATS, FORMATS, READ_FORMATS, WRITE_FORMATS, ExportFormat, Format
from .report import ReadReport
from .seeds import read_seeds

__all__ = [
    "EXPORT_FORMATS",
    "ExportFormat",
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
