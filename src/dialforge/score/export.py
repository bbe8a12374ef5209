"""`dialforge export`: one writer per training consumer (see `io.consumers`), each output
checked by that consumer's rules (`io.check`) before the export reports success.

- `openai`: OpenAI's chat fine-tuning JSONL; dialforge's ids and meta in `OUT.meta.jsonl`.
- `trl`: the same messages with `tools` as a JSON string, for TRL's `SFTTrainer`.
- `sharegpt`: ShareGPT / FastChat (LLaMA-Factory's tool roles where there are tool calls).
- `llamafactory`: a dataset folder: the data file plus a `dataset_info.json` entry declaring
  only the columns the file has.
- `hf`: a `datasets` folder with typed features.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..conversation import Conversation
from ..errors import DialforgeError
from ..io.check import LF_TAGS, Problem, check
from ..io.consumers import (
    Skips,
    llamafactory_problem,
    openai_problem,
    sidecar,
    sidecar_path,
    to_llamafactory,
    to_openai_ft,
    to_trl,
)
from ..io.reader import OnError, atomic_open, atomic_write_bytes, iter_conversations, write_conversations

EXPORT_FORMATS = ("openai", "trl", "sharegpt", "hf", "llamafactory")
#: The consumer whose rules `export` checks each format's output against.
CHECKED_AS = {"openai": "openai", "trl": "trl", "llamafactory": "llamafactory", "hf": "hf"}


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


def llamafactory_entry(file_name: str, columns: Iterable[str] = ()) -> dict[str, object]:
    """A `dataset_info.json` entry for a ShareGPT file: `messages` plus only the optional
    columns (`system`, `tools`) the file has; LLaMA-Factory reads a declared column from every
    row and fails with KeyError when no row has it."""
    cols = {"messages": "conversations"} | {c: c for c in ("system", "tools") if c in set(columns)}
    return {"file_name": file_name, "formatting": "sharegpt", "columns": cols, "tags": dict(LF_TAGS)}


def export(convs: Iterable[Conversation], fmt: str, out: str | Path, name: str = "dialforge") -> list[Path]:
    """Write `convs` (streamed: any iterable); for `llamafactory`, `out` is a dataset folder:
    the data file plus `dataset_info.json` (an existing one is updated, other entries kept)."""
    return export_conversations(convs, fmt, out, name).paths


def export_file(
    data: str | Path, fmt: str, out: str | Path, name: str = "dialforge", *, on_error: OnError = "skip"
) -> tuple[int, list[Path]]:
    """Export a conversation file one record at a time: (conversations written, paths)."""
    r = export_file_result(data, fmt, out, name, on_error=on_error)
    return r.written, r.paths


def export_file_result(
    data: str | Path, fmt: str, out: str | Path, name: str = "dialforge", *, on_error: OnError = "skip"
) -> ExportResult:
    _check_format(fmt)
    return export_conversations(iter_conversations(data, on_error=on_error), fmt, out, name)


def _check_format(fmt: str) -> None:
    if fmt not in EXPORT_FORMATS:
        raise DialforgeError(f"unknown export format {fmt!r} (expected one of {', '.join(EXPORT_FORMATS)})")


def export_conversations(
    convs: Iterable[Conversation], fmt: str, out: str | Path, name: str = "dialforge"
) -> ExportResult:
    """Write, then check what was written by its consumer's rules: a problem there is a
    DialforgeError naming file:line:field (the writers leave out what a consumer refuses, so
    one means a bug, or a local path that got through)."""
    _check_format(fmt)
    out = Path(out)
    if fmt in ("openai", "trl"):
        result = _write_chat(convs, out, fmt)
    elif fmt == "llamafactory":
        result = _write_llamafactory(convs, out, name)
    else:
        result = ExportResult(write_conversations(convs, out, fmt), [out])
    consumer = CHECKED_AS.get(fmt)
    if consumer is not None:
        target = result.paths[0] if fmt == "llamafactory" else out  # its own entry, not the folder's others
        problems, n = check(target, consumer)
        if n:
            raise DialforgeError(_problems_message(problems, n, consumer))
        result.checked_as = consumer
    return result


def _problems_message(problems: list[Problem], n: int, consumer: str) -> str:
    head = "\n".join(str(p) for p in problems[:10])
    more = f"\n... and {n - 10} more" if n > 10 else ""
    return f"the export breaks {consumer}'s rules ({n} problems):\n{head}{more}"


def _write_chat(convs: Iterable[Conversation], out: Path, fmt: str) -> ExportResult:
    to = to_openai_ft if fmt == "openai" else to_trl
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


def _write_llamafactory(convs: Iterable[Conversation], out: Path, name: str) -> ExportResult:
    out.mkdir(parents=True, exist_ok=True)
    data = out / f"{name}.json"
    result = ExportResult(0, [data])
    columns: set[str] = set()
    with atomic_open(data) as f:
        f.write(b"[")
        for c in convs:
            rec = to_llamafactory(c)
            why = llamafactory_problem(rec)
            if why:
                result.skipped[f"conversations {why}"] += 1
                continue
            columns |= {k for k in ("system", "tools") if k in rec}
            texts = sum(1 for m in c.messages if m.tool_calls and m.content.strip())
            if texts:  # a function_call turn holds only the calls
                result.skipped["assistant texts beside tool calls"] += texts
            f.write(b",\n" if result.written else b"\n")
            f.write(orjson.dumps(rec, option=orjson.OPT_INDENT_2))
            result.written += 1
        f.write(b"\n]\n")
    info_path = out / "dataset_info.json"
    info: dict[str, Any] = orjson.loads(info_path.read_bytes()) if info_path.exists() else {}
    info[name] = llamafactory_entry(data.name, columns)
    atomic_write_bytes(info_path, orjson.dumps(info, option=orjson.OPT_INDENT_2))
    result.paths.append(info_path)
    return result


# -- what a path exports ----------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    name: str
    path: Path
    kind: str = "file"  # "final": a simulator's filtered, deduplicated file; "unfiltered": it has none

    def describe(self) -> str:
        if self.kind == "file":
            return str(self.path)
        what = (
            "final: filtered and deduplicated" if self.kind == "final" else "unfiltered: the folder has no final.jsonl"
        )
        return f"{self.name}: from {self.path} ({what})"


def _simulator_source(folder: Path) -> Source | None:
    final = folder / "final.jsonl"
    if final.exists():
        return Source(folder.name, final, "final")
    conv = folder / "conversations.jsonl"
    return Source(folder.name, conv, "unfiltered") if conv.exists() else None


def export_sources(path: str | Path) -> list[Source]:
    """What to export from a path: a file as it is; a simulator folder's `final.jsonl` (else
    its `conversations.jsonl`); a `dialforge run` directory's simulators (`simulate/NAME/`),
    each its final file."""
    p = Path(path)
    if not p.exists():
        raise DialforgeError(f"{p}: file not found")
    if p.is_file():
        return [Source(p.stem, p)]
    own = _simulator_source(p)
    if own is not None:
        return [own]
    sims = sorted(d for d in (p / "simulate").iterdir() if d.is_dir()) if (p / "simulate").is_dir() else []
    found = [s for s in (_simulator_source(d) for d in sims) if s is not None]
    if not found:
        raise DialforgeError(
            f"{p}: no conversations here (expected a run directory with simulate/NAME/final.jsonl, "
            "or a simulator folder with final.jsonl or conversations.jsonl)"
        )
    return found


def export_target(out: Path, name: str, fmt: str) -> Path:
    """Where simulator `name` goes inside the folder `out` (the layout `dialforge run` uses)."""
    if fmt == "hf":
        return out / name
    if fmt == "llamafactory":
        return out  # one dataset folder, one dataset_info.json entry per simulator
    return out / f"{name}.{fmt}.{'json' if fmt == 'sharegpt' else 'jsonl'}"
