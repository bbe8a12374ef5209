"""Read and write conversation files in every supported format, with located errors."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

import orjson

from ..conversation import Conversation
from ..errors import DialforgeError, RecordError
from . import formats
from ._records import is_jsonl, iter_records

log = logging.getLogger("dialforge.io")

READ_FORMATS = ("auto", "openai", "sharegpt", "oasst", "oasst-best", "hf")
WRITE_FORMATS = ("openai", "sharegpt", "hf")
OnError = Literal["fail", "skip"]

_PARSERS: dict[str, Callable[[Any], list[Conversation]]] = {
    "openai": formats.parse_openai,
    "sharegpt": formats.parse_sharegpt,
    "oasst": formats.parse_oasst,
    "oasst-best": formats.parse_oasst_best,
}


@dataclass
class ReadReport:
    """What a read kept and what it skipped (each skip with its location and reason)."""

    path: str
    format: str = ""
    records: int = 0
    conversations: int = 0
    skipped: list[RecordError] = field(default_factory=list)

    def summary(self) -> str:
        s = f"{self.path}: {self.conversations} conversations from {self.records} records"
        if self.skipped:
            s += f", {len(self.skipped)} bad records skipped"
        return s


def _blank(path: Path) -> bool:
    """Only whitespace in the file (read in chunks: files can be larger than memory)."""
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            if chunk.strip():
                return False
    return True


def detect_format(path: Path) -> str:
    if path.is_dir():
        return "hf"
    if _blank(path):
        raise DialforgeError(f"{path}: no records (empty file)")
    for rec, _, _ in iter_records(path):
        if isinstance(rec, RecordError):
            continue
        if isinstance(rec, dict):
            if "messages" in rec:
                return "openai"
            if "conversations" in rec:
                return "sharegpt"
            if "message_tree_id" in rec or "prompt" in rec:
                return "oasst"
        break
    raise DialforgeError(
        f"{path}: cannot tell the format from the first record; pass --from ({', '.join(READ_FORMATS[1:])})"
    )


def read_conversations(
    path: str | Path,
    fmt: str = "auto",
    *,
    on_error: OnError = "fail",
    require_alternation: bool = False,
    report: ReadReport | None = None,
) -> list[Conversation]:
    """Read a dialogue file. In `skip` mode bad records are logged and counted in `report`."""
    return [
        c
        for c, _, _ in iter_located(
            path, fmt, on_error=on_error, require_alternation=require_alternation, report=report
        )
    ]


def iter_conversations(
    path: str | Path,
    fmt: str = "auto",
    *,
    on_error: OnError = "fail",
    require_alternation: bool = False,
    report: ReadReport | None = None,
) -> Iterator[Conversation]:
    """`read_conversations` one conversation at a time: memory stays flat in the file size."""
    for c, _, _ in iter_located(path, fmt, on_error=on_error, require_alternation=require_alternation, report=report):
        yield c


def iter_located(
    path: str | Path,
    fmt: str = "auto",
    *,
    on_error: OnError = "fail",
    require_alternation: bool = False,
    report: ReadReport | None = None,
) -> Iterator[tuple[Conversation, int | None, int]]:
    """(conversation, line, record index): streaming, so later errors can name the record."""
    path = Path(path)
    if fmt not in READ_FORMATS:
        raise DialforgeError(f"unknown format {fmt!r} (expected one of {', '.join(READ_FORMATS)})")
    if not path.exists():
        raise DialforgeError(f"{path}: file not found")
    if fmt == "auto":
        fmt = detect_format(path)
    report = report if report is not None else ReadReport(path=str(path))
    report.format = fmt
    if fmt == "hf":
        from .hf import load_hf

        convs = load_hf(path)
        report.records = report.conversations = len(convs)
        for i, c in enumerate(convs):
            yield c, None, i
        return
    parse = _PARSERS[fmt]
    for rec, line, index in iter_records(path):
        report.records += 1
        try:
            if isinstance(rec, RecordError):
                raise rec
            convs = parse(rec)
            if require_alternation:
                for c in convs:
                    problems = c.role_order_problems()
                    if problems:
                        raise RecordError(f"roles do not alternate: {problems[0]}", field="messages")
        except RecordError as e:
            if e.path is None:
                e = RecordError(e.message, path=path, line=line, index=None if line else index, field=e.field)
            if on_error == "fail":
                raise e from None
            report.skipped.append(e)
            log.warning("skipped bad record: %s", e)
            continue
        report.conversations += len(convs)
        for c in convs:
            yield c, line, index
    if report.records == 0:
        raise DialforgeError(f"{path}: no records (empty file)")


def read_texts(path: str | Path) -> list[str]:
    """Seed questions: a JSONL of strings, of {"text"|"prompt"|"question"|"turns"} objects, or text lines."""
    path = Path(path)
    if not path.exists():
        raise DialforgeError(f"{path}: file not found")
    out: list[str] = []
    if path.suffix not in (".jsonl", ".json"):
        return [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    for rec, line, index in iter_records(path):
        if isinstance(rec, RecordError):
            raise rec
        if isinstance(rec, str):
            text = rec
        elif isinstance(rec, dict):
            for key in ("text", "prompt", "question", "turns"):
                if key in rec:
                    text = rec[key][0] if key == "turns" else rec[key]
                    break
            else:
                raise RecordError(
                    "expected a string or an object with text/prompt/question/turns", path=path, line=line, index=index
                )
        else:
            raise RecordError("expected a string", path=path, line=line, index=index)
        if text.strip():
            out.append(text)
    return out


def _file_mode() -> int:
    """0666 less the process umask (read without changing it where /proc allows)."""
    try:
        with open("/proc/self/status") as f:
            umask = next(int(ln.split()[1], 8) for ln in f if ln.startswith("Umask:"))
    except (OSError, StopIteration, ValueError):
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write a whole file so that readers see the old or the new content, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _file_mode())  # mkstemp makes 0600; outputs get what open() would give
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_writer(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file that appears at `path` complete or not at all (streamed to a temp file
    in the same folder, then renamed), so a failure mid-way never leaves half an output."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_conversations(convs: Iterable[Conversation], path: str | Path, fmt: str = "openai") -> int:
    """Write conversations atomically, streaming (one record in memory at a time); ShareGPT
    goes to a JSON array unless the path ends in .jsonl."""
    path = Path(path)
    if fmt not in WRITE_FORMATS:
        raise DialforgeError(f"unknown output format {fmt!r} (expected one of {', '.join(WRITE_FORMATS)})")
    if fmt == "hf":
        from .hf import save_hf

        convs = list(convs)
        save_hf(convs, path)
        return len(convs)
    to_record = formats.to_openai if fmt == "openai" else formats.to_sharegpt
    n = 0
    with atomic_writer(path) as f:
        if fmt == "sharegpt" and path.suffix != ".jsonl":
            # byte-identical to orjson.dumps(list, OPT_INDENT_2), one item at a time
            for c in convs:
                item = orjson.dumps(to_record(c), option=orjson.OPT_INDENT_2).replace(b"\n", b"\n  ")
                f.write((b"[\n  " if n == 0 else b",\n  ") + item)
                n += 1
            f.write(b"\n]" if n else b"[]")
        else:
            for c in convs:
                f.write(orjson.dumps(to_record(c)) + b"\n")
                n += 1
    return n


__all__ = [
    "ReadReport",
    "read_conversations",
    "write_conversations",
    "iter_conversations",
    "iter_located",
    "atomic_writer",
    "read_texts",
    "atomic_write_bytes",
    "detect_format",
    "is_jsonl",
    "READ_FORMATS",
    "WRITE_FORMATS",
]
