"""Rich progress bars with ETA and live usage on a terminal; off a terminal (a log file, a
pipe, CI) one plain line every `LINE_EVERY_S` seconds, so a long job is never silent."""

from __future__ import annotations

import sys
import time
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


LINE_EVERY_S = 10.0


class StageProgress:
    def __init__(
        self,
        progress: Progress | None,
        task: TaskID | None,
        usage: UsageTracker | None,
        lines: tuple[str, int] | None = None,
    ):
        self._p, self._t, self._usage = progress, task, usage
        self._lines = lines  # (name, total): plain lines off a terminal
        self._done = 0
        self._start = self._last = time.monotonic()

    def advance(self, n: int = 1, info: str = "") -> None:
        self._done += n
        if self._p is not None and self._t is not None:
            live = self._usage.summary_line() if self._usage else ""
            self._p.update(self._t, advance=n, info=" | ".join(x for x in (live, info) if x))
        elif self._lines is not None:
            now = time.monotonic()
            name, total = self._lines
            # every LINE_EVERY_S, and the last job of a stage that took that long
            if now - self._last >= LINE_EVERY_S or (self._done >= total and now - self._start >= LINE_EVERY_S):
                self._last = now
                live = self._usage.summary_line() if self._usage else ""
                text = f"{name}: {self._done}/{total} after {now - self._start:.0f} s"
                print(" | ".join(x for x in (text, live, info) if x), file=sys.stderr, flush=True)


@contextmanager
def stage_progress(
    name: str, total: int, usage: UsageTracker | None = None, enabled: bool | None = None
) -> Iterator[StageProgress]:
    if enabled is None and not sys.stderr.isatty():
        yield StageProgress(None, None, usage, lines=(name, total))
        return
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
