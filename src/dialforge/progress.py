"""Rich progress bars with ETA and live usage, quiet when not on a terminal."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from .llm.usage import UsageTracker

console = Console(stderr=True)


class StageProgress:
    def __init__(self, progress: Progress | None, task: TaskID | None, usage: UsageTracker | None):
        self._p, self._t, self._usage = progress, task, usage

    def advance(self, n: int = 1, info: str = "") -> None:
        if self._p is not None and self._t is not None:
            live = self._usage.summary_line() if self._usage else ""
            self._p.update(self._t, advance=n, info=" | ".join(x for x in (live, info) if x))


@contextmanager
def stage_progress(
    name: str, total: int, usage: UsageTracker | None = None, enabled: bool | None = None
) -> Iterator[StageProgress]:
    enabled = sys.stderr.isatty() if enabled is None else enabled
    if not enabled:
        yield StageProgress(None, None, usage)
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
        transient=False,
    ) as p:
        t = p.add_task(name, total=total, info="")
        yield StageProgress(p, t, usage)
