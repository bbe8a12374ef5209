"""Write the report page to a file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..io.files import atomic_write_bytes
from .page import render


def write_report(roots: Sequence[str | Path], out: str | Path) -> Path:
    """Write the page for `roots` to `out` (atomically: a failed render leaves no half page)."""
    out = Path(out)
    atomic_write_bytes(out, render([Path(r) for r in roots]).encode("utf-8"))
    return out
