"""Errors a user can act on. The CLI prints them as one line and exits 2."""

from __future__ import annotations

from pathlib import Path


class DialforgeError(Exception):
    """A problem with the user's input, config or environment (not a bug)."""


class RecordError(DialforgeError):
    """One bad record: names the file, the line (or record index) and the field."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        index: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.index = index
        self.field = field
        super().__init__(self.location() + message)

    def location(self) -> str:
        parts = []
        if self.path is not None:
            where = self.path
            if self.line is not None:
                where += f":{self.line}"
            elif self.index is not None:
                where += f"[record {self.index}]"
            parts.append(where)
        elif self.index is not None:
            parts.append(f"record {self.index}")
        if self.field:
            parts.append(f"field '{self.field}'")
        return (": ".join(parts) + ": ") if parts else ""


class ConfigError(DialforgeError):
    """A config file or flag is invalid; the message names the path of the bad field."""


class RunDirConflict(DialforgeError):
    """A run directory belongs to a different config."""


class BackendUnavailable(DialforgeError):
    """A model server that cannot serve this stage at all (connection refused, DNS, TLS, auth,
    unknown model), raised at its first requests. Stage executors must let it through instead
    of recording it as one job's failure: every other job would fail the same way."""
