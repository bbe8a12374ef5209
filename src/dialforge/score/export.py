"""`dialforge export`: ShareGPT, OpenAI messages, HF datasets on disk, LLaMA-Factory."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import orjson

from ..conversation import Conversation
from ..errors import DialforgeError
from ..io.reader import OnError, atomic_write_bytes, iter_conversations, write_conversations

EXPORT_FORMATS = ("openai", "sharegpt", "hf", "llamafactory")


def llamafactory_entry(file_name: str) -> dict[str, object]:
    """A `dataset_info.json` entry for a ShareGPT file written by `to_sharegpt`."""
    return {
        "file_name": file_name,
        "formatting": "sharegpt",
        "columns": {"messages": "conversations", "system": "system", "tools": "tools"},
        "tags": {
            "role_tag": "from",
            "content_tag": "value",
            "user_tag": "human",
            "assistant_tag": "gpt",
            "observation_tag": "observation",
            "function_tag": "function_call",
            "system_tag": "system",
        },
    }


def export(convs: Iterable[Conversation], fmt: str, out: str | Path, name: str = "dialforge") -> list[Path]:
    """Write `convs` (streamed: any iterable); for `llamafactory`, `out` is a dataset folder:
    the data file plus `dataset_info.json` (an existing one is updated, other entries kept)."""
    return _export(convs, fmt, out, name)[1]


def export_file(
    data: str | Path, fmt: str, out: str | Path, name: str = "dialforge", *, on_error: OnError = "skip"
) -> tuple[int, list[Path]]:
    """Export a conversation file one record at a time: (conversations written, paths)."""
    if fmt not in EXPORT_FORMATS:
        raise DialforgeError(f"unknown export format {fmt!r} (expected one of {', '.join(EXPORT_FORMATS)})")
    return _export(iter_conversations(data, on_error=on_error), fmt, out, name)


def _export(convs: Iterable[Conversation], fmt: str, out: str | Path, name: str) -> tuple[int, list[Path]]:
    out = Path(out)
    if fmt not in EXPORT_FORMATS:
        raise DialforgeError(f"unknown export format {fmt!r} (expected one of {', '.join(EXPORT_FORMATS)})")
    if fmt != "llamafactory":
        return write_conversations(convs, out, fmt), [out]
    out.mkdir(parents=True, exist_ok=True)
    data = out / f"{name}.json"
    n = write_conversations(convs, data, "sharegpt")
    info_path = out / "dataset_info.json"
    info = orjson.loads(info_path.read_bytes()) if info_path.exists() else {}
    info[name] = llamafactory_entry(data.name)
    atomic_write_bytes(info_path, orjson.dumps(info, option=orjson.OPT_INDENT_2))
    return n, [data, info_path]
