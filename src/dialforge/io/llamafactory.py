"""LLaMA-Factory's dataset folder (`export --to llamafactory`): the ShareGPT data file
`NAME.json` (`consumers.to_llamafactory`) and the folder's `dataset_info.json`, whose entry
NAME declares only the columns the file has (LLaMA-Factory reads a declared column from every
row and fails with KeyError when no row has it). Registered in `registry.FORMATS`."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from ..conversation import Conversation
from .consumers import LF_TAGS, llamafactory_problem, to_llamafactory
from .files import atomic_open, atomic_write_bytes
from .writers import ExportResult

#: The optional columns a ShareGPT record may have beside its turns.
OPTIONAL_COLUMNS = ("system", "tools")


def llamafactory_entry(file_name: str, columns: Iterable[str] = ()) -> dict[str, object]:
    """A `dataset_info.json` entry for a ShareGPT file: `messages` plus only the optional
    columns (`system`, `tools`) the file has."""
    cols = {"messages": "conversations"} | {c: c for c in OPTIONAL_COLUMNS if c in set(columns)}
    return {"file_name": file_name, "formatting": "sharegpt", "columns": cols, "tags": dict(LF_TAGS)}


def write_llamafactory(convs: Iterable[Conversation], out: Path, name: str) -> ExportResult:
    """`out` is the dataset folder: `NAME.json` is written, then NAME's entry in its
    `dataset_info.json` (an existing one is updated, other entries kept)."""
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
            columns |= {k for k in OPTIONAL_COLUMNS if k in rec}
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
