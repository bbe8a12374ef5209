"""HF `datasets` on disk: one row per conversation with typed features (`consumers.hf_features`):
`messages` as [{role, content, name, tool_calls: [{id, type, function: {name, arguments}}],
tool_call_id}], `tools` as JSON text (OpenAI's schema), meta as JSON text with local paths
scrubbed (a dataset on disk is one `push_to_hub` away from public)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from ..conversation import Conversation, Message, ToolCall
from ..errors import DialforgeError
from .consumers import hf_features, to_hf_row


def save_hf(convs: list[Conversation], path: Path) -> None:
    from datasets import Dataset

    rows = [to_hf_row(c) for c in convs]
    features = hf_features()
    Dataset.from_dict({k: [r[k] for r in rows] for k in features}, features=features).save_to_disk(str(path))


def _message(m: dict[str, Any], meta: str | None) -> Message:
    calls = [
        ToolCall(id=c["id"], name=c["function"]["name"], arguments=orjson.loads(c["function"]["arguments"] or "{}"))
        for c in m.get("tool_calls") or []
    ]
    return Message(
        role=m["role"],
        content=m["content"] or "",
        name=m.get("name"),
        tool_calls=calls,
        tool_call_id=m.get("tool_call_id"),
        meta=orjson.loads(meta) if meta else {},
    )


def load_hf(path: Path) -> list[Conversation]:
    from datasets import load_from_disk

    try:
        ds = load_from_disk(str(path))
    except FileNotFoundError as e:
        raise DialforgeError(f"{path}: not a saved HF dataset ({e})") from None
    out = []
    for row in ds:
        mm = row.get("message_meta") or [None] * len(row["messages"])
        msgs = [_message(m, meta) for m, meta in zip(row["messages"], mm, strict=True)]
        meta = orjson.loads(row["meta"]) if row.get("meta") else {}
        tools = orjson.loads(row["tools"]) if row.get("tools") else []
        out.append(Conversation(id=row["id"], messages=msgs, tools=tools, meta=meta))
    return out
