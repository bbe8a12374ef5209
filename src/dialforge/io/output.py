"""`write_conversations`: conversations to a file (or folder) in a named format, by that
format's writer (`registry.Format.write`), atomically."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..conversation import Conversation
from .files import check_output
from .registry import writer


def write_conversations(convs: Iterable[Conversation], path: str | Path, fmt: str = "openai") -> int:
    """Write conversations atomically, streaming (an iterator is never held in memory but
    for `hf`); ShareGPT goes to a JSON array unless the path ends in .jsonl."""
    path = Path(path)
    w = writer(fmt)
    check_output(path, folder=w.folder)
    return w.write(convs, path)
