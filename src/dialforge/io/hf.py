"""HF `datasets` on disk: one row per conversation, `messages` as a list of {role, content}."""

from __future__ import annotations

from pathlib import Path

import orjson

from ..conversation import Conversation, Message
from ..errors import DialforgeError


def save_hf(convs: list[Conversation], path: Path) -> None:
    from datasets import Dataset

    rows = {
        "id": [c.id for c in convs],
        "messages": [[{"role": m.role, "content": m.content} for m in c.messages] for c in convs],
        # meta is free-form: kept as JSON text so the Arrow schema stays fixed
        "meta": [orjson.dumps(c.meta).decode() for c in convs],
        "message_meta": [[orjson.dumps(m.meta).decode() for m in c.messages] for c in convs],
    }
    Dataset.from_dict(rows).save_to_disk(str(path))


def load_hf(path: Path) -> list[Conversation]:
    from datasets import load_from_disk

    try:
        ds = load_from_disk(str(path))
    except FileNotFoundError as e:
        raise DialforgeError(f"{path}: not a saved HF dataset ({e})") from None
    out = []
    for row in ds:
        mm = row.get("message_meta") or [None] * len(row["messages"])
        msgs = [
            Message(role=m["role"], content=m["content"], meta=orjson.loads(meta) if meta else {})
            for m, meta in zip(row["messages"], mm, strict=True)
        ]
        meta = orjson.loads(row["meta"]) if row.get("meta") else {}
        out.append(Conversation(id=row["id"], messages=msgs, meta=meta))
    return out
