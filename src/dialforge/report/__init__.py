"""`dialforge report RUN_DIR...`: one self-contained HTML page a person decides from.

`collect` reads the run directories into plain data, `sections`/`compare` write the HTML
(every value escaped), `payload` embeds every dialogue compressed, and `assets/report.js`
browses them in the page (it only ever inserts data as text). docs/report.md explains the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..io.reader import atomic_write_bytes
from .collect import Run, read_run, read_runs
from .page import render

__all__ = ["Run", "read_run", "read_runs", "render", "write_report"]


def write_report(roots: Sequence[str | Path], out: str | Path) -> Path:
    """Write the page for `roots` to `out` (atomically: a failed render leaves no half page)."""
    out = Path(out)
    atomic_write_bytes(out, render([Path(r) for r in roots]).encode("utf-8"))
    return out
