"""`write_conversations`: conversations to a file (or folder) in a named format, by that
format's writer (`registry.Format.write`), atomically; `export_conversations`: by its export
writer (`registry.Format.export`), then checked by the consumer's rules (`check.py`)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from ..conversation import Conversation
from ..errors import DialforgeError
from .files import check_output
from .registry import exporter, writer
from .writers import ExportResult

if TYPE_CHECKING:
    from .check import Problem


def write_conversations(convs: Iterable[Conversation], path: str | Path, fmt: str = "openai") -> int:
    """Write conversations atomically, streaming (an iterator is never held in memory but
    for `hf`); ShareGPT goes to a JSON array unless the path ends in .jsonl."""
    path = Path(path)
    w = writer(fmt)
    check_output(path, folder=w.folder)
    return w.write(convs, path)


def export_conversations(
    convs: Iterable[Conversation], fmt: str, out: str | Path, name: str = "dialforge"
) -> ExportResult:
    """Write by the format's export writer (`io.registry`), then check what was written by its
    consumer's rules: a problem there is a DialforgeError naming file:line:field (the writers
    leave out what a consumer refuses, so one means a bug, or a local path that got through)."""
    from .check import check  # the checker loads on first export, not with the writers

    spec = exporter(fmt)
    result = spec.write(convs, Path(out), name)
    if spec.check_as is not None:  # the first path: the data file (not a folder's other entries)
        problems, n = check(result.paths[0], spec.check_as)
        if n:
            raise DialforgeError(_problems_message(problems, n, spec.check_as))
        result.checked_as = spec.check_as
    return result


def _problems_message(problems: list[Problem], n: int, consumer: str) -> str:
    head = "\n".join(str(p) for p in problems[:10])
    more = f"\n... and {n - 10} more" if n > 10 else ""
    return f"the export breaks {consumer}'s rules ({n} problems):\n{head}{more}"
