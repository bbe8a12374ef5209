"""Writers: how a format puts conversations on disk. Two kinds, both named by a format entry
(`registry.Format`):

- `Writer`: `write_conversations`' (`convert --to`), dialforge's own shape of a format,
  every conversation written;
- `Export`: `dialforge export`'s, a training consumer's shape (see `consumers`): what the
  consumer refuses is left out and counted, and the output is then checked by the consumer's
  rules (`check`, named by `check_as`).

Each streams (an iterator is never held in memory but for `hf`) through `files.atomic_open`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

from ..conversation import Conversation
from .consumers import Skips, openai_problem, sidecar, sidecar_path
from .files import atomic_open, check_output
from .hf import save_hf


@dataclass
class ExportResult:
    written: int
    paths: list[Path]
    skipped: Skips = field(default_factory=Skips)
    checked_as: str | None = None

    def summary(self) -> str:
        s = f"exported {self.written} conversation{'' if self.written == 1 else 's'}: {', '.join(map(str, self.paths))}"
        if self.skipped:
            s += f"; left out {self.skipped.summary()}"
        if self.checked_as:
            s += f"; checked as {self.checked_as}: 0 problems"
        return s


WriteFn = Callable[[Iterable[Conversation], Path], int]
ExportFn = Callable[[Iterable[Conversation], Path, str], ExportResult]


@dataclass(frozen=True)
class Writer:
    """`write_conversations`' writer: (conversations, path) -> how many were written; `folder`
    when the output is a folder, not a file."""

    write: WriteFn
    folder: bool = False


@dataclass(frozen=True)
class Export:
    """`dialforge export`'s writer: (conversations, out, dataset name) -> an ExportResult whose
    first path is what `check_as` (a consumer of `check.CONSUMERS`, or None) checks.

    `layout` says where a run's simulator NAME goes inside an export folder OUT: `file`:
    `OUT/NAME.FORMAT.SUFFIX`; `folder`: `OUT/NAME/`; `shared`: OUT itself, one folder holding
    every simulator's dataset (LLaMA-Factory's `dataset_info.json` lists them)."""

    write: ExportFn
    check_as: str | None = None
    layout: Literal["file", "folder", "shared"] = "file"
    suffix: str = ".jsonl"

    @property
    def folder(self) -> bool:
        return self.layout != "file"

    def target(self, out: Path, name: str, fmt: str) -> Path:
        """Where simulator `name`'s export in this format goes inside the folder `out`."""
        if self.layout == "shared":
            return out
        if self.layout == "folder":
            return out / name
        return out / f"{name}.{fmt}{self.suffix}"


# -- write_conversations' writers -------------------------------------------------------------


def write_records(convs: Iterable[Conversation], path: Path, to: Callable[[Conversation], Any], *, array: bool) -> int:
    """One record per conversation: JSON Lines, or an indented JSON array (`array`)."""
    n = 0
    with atomic_open(path) as f:
        if array:
            f.write(b"[")
        for c in convs:
            if array:
                f.write(b",\n" if n else b"\n")
                f.write(orjson.dumps(to(c), option=orjson.OPT_INDENT_2))
            else:
                f.write(orjson.dumps(to(c)) + b"\n")
            n += 1
        if array:
            f.write(b"\n]\n")
    return n


def jsonl_writer(to: Callable[[Conversation], Any]) -> Writer:
    """A JSON Lines writer of the records `to` makes."""
    return Writer(lambda convs, path: write_records(convs, path, to, array=False))


def array_writer(to: Callable[[Conversation], Any]) -> Writer:
    """A JSON array of the records `to` makes, JSON Lines where the path ends in .jsonl."""
    return Writer(lambda convs, path: write_records(convs, path, to, array=path.suffix != ".jsonl"))


def _write_hf(convs: Iterable[Conversation], path: Path) -> int:
    rows = list(convs)
    save_hf(rows, path)
    return len(rows)


#: An HF `datasets` folder (typed features); the one writer that holds its conversations.
HF_WRITER = Writer(_write_hf, folder=True)


# -- export writers ---------------------------------------------------------------------------


def as_export(writer: Writer) -> ExportFn:
    """`write_conversations`' writer as an export writer (every conversation written as is)."""

    def write(convs: Iterable[Conversation], out: Path, name: str) -> ExportResult:
        check_output(out, folder=writer.folder)
        return ExportResult(writer.write(convs, out), [out])

    return write


def chat_export(to: Callable[[Conversation], dict[str, Any]]) -> ExportFn:
    """An OpenAI-shaped export (OpenAI fine-tuning, TRL): the records `to` makes, only the
    conversations OpenAI takes (`consumers.openai_problem`), dialforge's ids and meta in the
    `OUT.meta.jsonl` sidecar, one line per line."""

    def write(convs: Iterable[Conversation], out: Path, name: str) -> ExportResult:
        result = ExportResult(0, [out])
        side = sidecar_path(out)
        with atomic_open(out) as f, atomic_open(side) as g:
            for c in convs:
                why = openai_problem(c)
                if why:
                    result.skipped[f"conversations {why}"] += 1
                    continue
                result.written += 1
                f.write(orjson.dumps(to(c)) + b"\n")
                g.write(orjson.dumps(sidecar(c, result.written)) + b"\n")
        result.paths.append(side)
        return result

    return write
