"""Low-level record iteration with locations, so every error can name file and line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from ..errors import DialforgeError, RecordError


def is_jsonl(path: Path) -> bool:
    """JSON Lines by extension, else by content (a file whose first char is '[' is a JSON array)."""
    if path.suffix in (".jsonl", ".ndjson"):
        return True
    if path.suffix == ".json":
        return False
    with path.open("rb") as f:
        head = f.read(4096).lstrip()
    return not head.startswith(b"[")


def iter_records(path: Path) -> Iterator[tuple[dict[str, Any], int | None, int]]:
    """Yield (record, line, index). `line` is 1-based for JSONL, None for a JSON array.

    A broken JSON line in a JSONL file is yielded as a RecordError instance in place of
    the record so the caller can skip it; a broken JSON array cannot be split and raises.
    """
    if not path.exists():
        raise DialforgeError(f"{path}: file not found")
    if path.is_dir():
        raise DialforgeError(f"{path}: is a directory, expected a file")
    if is_jsonl(path):
        index = 0
        with path.open("rb") as f:
            for lineno, raw in enumerate(f, start=1):
                if not raw.strip():
                    continue
                try:
                    obj = orjson.loads(raw)
                except orjson.JSONDecodeError as e:
                    yield RecordError(f"broken JSON ({e})", path=path, line=lineno), lineno, index  # type: ignore[misc]
                    index += 1
                    continue
                yield obj, lineno, index
                index += 1
        return
    try:
        data = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as e:
        raise RecordError(f"broken JSON ({e})", path=path) from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise RecordError("expected a JSON array of records", path=path)
    for index, obj in enumerate(data):
        yield obj, None, index
