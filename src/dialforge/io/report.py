"""What a read kept and what it skipped: the report every reader (conversations, seeds) fills."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..errors import RecordError

OnError = Literal["fail", "skip"]
#: At most this many skipped-record errors are kept in a report (all are counted).
KEEP_ERRORS = 100


@dataclass
class ReadReport:
    """What a read kept and what it skipped (each skip with its location and reason)."""

    path: str
    format: str = ""
    records: int = 0
    conversations: int = 0
    skipped: list[RecordError] = field(default_factory=list)
    n_skipped: int = 0
    duplicates: int = 0
    duplicate_example: str = ""
    deduped: bool = False
    not_openings: int = 0  # seed files: answers and in-thread replies of a flat message list, left out

    def skip(self, e: RecordError) -> None:
        self.n_skipped += 1
        if len(self.skipped) < KEEP_ERRORS:
            self.skipped.append(e)

    def summary(self) -> str:
        s = f"{self.path}: {self.conversations} conversations from {self.records} records"
        if self.n_skipped:
            s += f", {self.n_skipped} bad records skipped"
        if self.duplicates:
            fate = "dropped" if self.deduped else "kept"
            s += f", {self.duplicates} duplicate ids {fate} (first: {self.duplicate_example})"
        return s


__all__ = ["KEEP_ERRORS", "OnError", "ReadReport"]
