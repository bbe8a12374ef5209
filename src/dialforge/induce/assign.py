"""Map extracted records to their high-level strategy: the labels for simulator training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson

from ..errors import DialforgeError, RecordError
from ..io._records import iter_records
from ..io.files import atomic_write_bytes
from .embed import Embedder
from .library import StrategyLibrary


def assign_records(library: str | Path, records: str | Path, out: str | Path, embedder: str | None = None) -> int:
    """Known strategy strings map through the library's members; unseen ones go to the
    nearest centroid in the library's embedding space."""
    lib = StrategyLibrary.load(library)
    lib_dir = Path(library) if Path(library).is_dir() else Path(library).parent
    text_of = {s.id: s.text for s in lib.strategies}
    by_text = _known(lib, lib_dir / "originals.jsonl")
    rows = _read_rows(records)
    unseen = sorted({r["strategy"] for r in rows if r["strategy"] not in by_text})
    if unseen:
        emb = Embedder(embedder or lib.embedder).embed(unseen)
        best = np.argmax(emb @ lib.centroids().T, axis=1)
        for t, b in zip(unseen, best, strict=True):
            by_text[t] = lib.strategies[int(b)].id
    data = b"".join(
        orjson.dumps({**r, "strategy_id": by_text[r["strategy"]], "strategy_text": text_of[by_text[r["strategy"]]]})
        + b"\n"
        for r in rows
    )
    atomic_write_bytes(out, data)
    return len(rows)


def _known(lib: StrategyLibrary, originals: Path) -> dict[str, str]:
    """Original strategy text -> strategy id, from the induction run's `originals.jsonl`."""
    member_of = {m: s.id for s in lib.strategies for m in s.members}
    by_text: dict[str, str] = {}
    if originals.exists():
        for raw in originals.open("rb"):
            o = orjson.loads(raw)
            by_text[o["text"]] = member_of.get(o["id"], o.get("strategy_id"))
    return by_text


def _read_rows(records: str | Path) -> list[dict[str, Any]]:
    """Every record, each with a string `strategy`; the first bad one stops with its location."""
    rows = []
    for rec, line, index in iter_records(Path(records)):
        if isinstance(rec, RecordError):
            raise rec
        if not isinstance(rec, dict) or not isinstance(rec.get("strategy"), str):
            raise RecordError("missing field", path=records, line=line, index=index, field="strategy")
        rows.append(rec)
    if not rows:
        raise DialforgeError(f"{records}: no records")
    return rows
