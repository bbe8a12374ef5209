"""The data the page's script browses: every dialogue (clean text, ids, scores, strategies) and
every strategy, as compact JSON, gzip-compressed and base64-encoded into the page. Base64 has
no `<`, `&` or quote, so nothing from the data can close the script element that holds it;
the script only ever puts data into the page as text."""

from __future__ import annotations

import base64
import gzip
from collections import Counter
from typing import Any

import orjson

from ..score.registry import Metric, metrics
from .collect import Run
from .format import clean, cut, decimals

ROLE_CODES = {"user": "u", "assistant": "a", "system": "s", "tool": "t"}
N_EXAMPLES = 3  # example source turns per strategy


def browse_metrics(runs: list[Run]) -> list[Metric]:
    """Numeric per-conversation metrics some dialogue on the page has a value for."""
    present: set[str] = set()
    for r in runs:
        for s in r.sims:
            for rec in s.scores.values():
                present.update(k for k, v in rec.items() if isinstance(v, int | float) and not isinstance(v, bool))
    keep = [m for m in metrics("conversation") if m.kind in ("number", "int") and m.name in present]
    return keep


def strategy_rows(runs: list[Run]) -> list[dict[str, Any]]:
    """Every strategy of the first library on the page, with where each simulator used it."""
    lib = next((r.library for r in runs if r.library), None)
    if not lib:
        return []
    used = strategy_use(runs)
    return [
        {
            "id": str(st.get("id")),
            "text": cut(st.get("text"), 400),
            "size": int(st.get("size") or 0),
            "members": len(st.get("members") or []),
            "examples": [cut(e.get("instruction"), 300) for e in (st.get("examples") or [])[:N_EXAMPLES]],
            "used": dict(used.get(str(st.get("id")), {})),
        }
        for st in lib.get("strategies") or []
    ]


def strategy_use(runs: list[Run]) -> dict[str, Counter[str]]:
    """User turns per strategy id and simulator label."""
    used: dict[str, Counter[str]] = {}
    for s in (s for r in runs for s in r.sims):
        for c in s.conversations:
            for m in c["messages"]:
                sid = (m.get("meta") or {}).get("strategy_id") if isinstance(m, dict) else None
                if sid:
                    used.setdefault(str(sid), Counter())[s.label] += 1
    return used


def _message(m: Any, strategy_index: dict[str, int]) -> list[Any]:
    if not isinstance(m, dict):
        return ["s", clean(m), -1]
    meta = m.get("meta") or {}
    sid = meta.get("strategy_id")
    idx = strategy_index.get(str(sid), -1) if sid else -1
    label = "" if idx >= 0 or not meta.get("strategy") else cut(meta.get("strategy"), 120)
    out: list[Any] = [ROLE_CODES.get(str(m.get("role")), "s"), clean(m.get("content")), idx]
    step = cut(meta.get("step"), 80) if meta.get("step") else ""
    extra = {k: v for k, v in (("label", label), ("step", step), ("seed", int(bool(meta.get("seed"))))) if v}
    if extra:
        out.append(extra)
    return out


def _conv_row(
    si: int, ri: int, c: dict[str, Any], sc: dict[str, Any], strategy_index: dict[str, int], cols: list[Metric]
) -> list[Any]:
    """[simulator, id, reason, strategies used, metric values, messages, seed id]"""
    msgs = [_message(m, strategy_index) for m in c["messages"]]
    used = sorted({m[2] for m in msgs if m[2] >= 0})
    vals = [v if isinstance(v := sc.get(m.name), int | float) else None for m in cols]
    return [si, clean(c["id"]), ri, used, vals, msgs, clean((c.get("meta") or {}).get("seed_id") or "")]


def build(runs: list[Run]) -> dict[str, Any]:
    """The page's data: lists of names plus one row per dialogue (indexes into those lists)."""
    strategies = strategy_rows(runs)
    strategy_index = {s["id"]: i for i, s in enumerate(strategies)}
    cols = browse_metrics(runs)
    sims = [s for r in runs for s in r.sims]
    reasons: dict[str, int] = {}
    convs = []
    for si, s in enumerate(sims):
        for c in s.conversations:
            reason = str((c.get("meta") or {}).get("termination_reason") or "none")
            ri = reasons.setdefault(reason, len(reasons))
            convs.append(_conv_row(si, ri, c, s.scores.get(str(c["id"]), {}), strategy_index, cols))
    return {
        "sims": [s.label for s in sims],
        "reasons": list(reasons),
        "strategies": strategies,
        "metrics": [{"name": m.name, "desc": m.description, "dir": m.direction, "digits": decimals(m)} for m in cols],
        "convs": convs,
    }


def encode(data: dict[str, Any]) -> str:
    """gzip + base64 of the JSON (mtime 0: the same data gives the same bytes)."""
    raw = orjson.dumps(data)
    return base64.b64encode(gzip.compress(raw, compresslevel=6, mtime=0)).decode("ascii")


def decode(text: str) -> dict[str, Any]:
    """The inverse of `encode` (tests and tools)."""
    out: dict[str, Any] = orjson.loads(gzip.decompress(base64.b64decode(text)))
    return out
