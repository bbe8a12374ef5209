"""Where commands print: results on stdout, progress, notes and warnings on stderr, one line each."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

out_console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def say(text: str) -> None:
    """One plain line on stderr (no markup, no highlighting: paths and brackets print as typed)."""
    err_console.print(text, markup=False, highlight=False)


def finish(warnings: list[str], strict: bool) -> None:
    """Health warnings go last, where a user looks; `--strict` makes them an exit status."""
    for w in warnings:
        say(f"warning: {w}")
    if strict and warnings:
        say(f"error: --strict: {len(warnings)} warning(s)")
        sys.exit(3)


def show(result: Any, strict: bool) -> None:
    """A command's `Result`: summaries on stderr, data as JSON on stdout, warnings last."""
    for line in result.lines:
        say(line)
    if result.data is not None:
        out_console.print_json(json.dumps(result.data))
    finish(result.warnings, strict)


def print_skips(report: Any, shown: int = 5) -> None:
    for e in report.skipped[:shown]:
        say(f"skipped: {e}")
    if report.n_skipped > shown:
        say(f"skipped: ... and {report.n_skipped - shown} more")


def tiny_note() -> None:
    from ..tiny import TINY

    say(
        f"note: running on `{TINY}`, a tiny random model built on this machine, so the text is not "
        "meaningful; it shows every stage working offline. Point the same config at a real model "
        "with --base-url URL --model NAME (an OpenAI-compatible server) or --model /path/to/model."
    )
