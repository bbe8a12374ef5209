"""Read and write conversation files in every supported format, with located errors."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

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


def detect_format(path: Path) -> str:
    if path.is_dir():
        return "hf"
    if not path.read_bytes().strip():
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
        return convs
    parse = _PARSERS[fmt]
    out: list[Conversation] = []
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
        out.extend(convs)
    if report.records == 0:
        raise DialforgeError(f"{path}: no records (empty file)")
    report.conversations = len(out)
    return out


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


def write_conversations(convs: Iterable[Conversation], path: str | Path, fmt: str = "openai") -> int:
    """Write conversations atomically; ShareGPT goes to a JSON array unless the path ends in .jsonl."""
    path = Path(path)
    if fmt not in WRITE_FORMATS:
        raise DialforgeError(f"unknown output format {fmt!r} (expected one of {', '.join(WRITE_FORMATS)})")
    convs = list(convs)
    if fmt == "hf":
        from .hf import save_hf

        save_hf(convs, path)
        return len(convs)
    if fmt == "openai":
        recs = [formats.to_openai(c) for c in convs]
    else:
        recs = [formats.to_sharegpt(c) for c in convs]
    if fmt == "sharegpt" and path.suffix != ".jsonl":
        data = orjson.dumps(recs, option=orjson.OPT_INDENT_2)
    else:
        data = b"".join(orjson.dumps(r) + b"\n" for r in recs)
    atomic_write_bytes(path, data)
    return len(convs)


__all__ = [
    "ReadReport",
    "read_conversations",
    "write_conversations",
    "read_texts",
    "atomic_write_bytes",
    "detect_format",
    "is_jsonl",
    "READ_FORMATS",
    "WRITE_FORMATS",
]
