"""The data the page's script browses: every dialogue (clean text, ids, scores, strategies) and
every strategy, as compact JSON, gzip-compressed and base64-encoded into the page. Base64 has
no `<`, `&` or quote, so nothing from the data can close the script element that holds it;
the script only ever puts data into the page as text."""

from __future__ import annotations

import base64
import gzip
from collections import Counter
from dataclasses import dataclass
from typing import Any

import orjson

from ..score.registry import Metric, metrics
from .collect import Run
from .format import clean, cut, decimals

COMPRESS_LEVEL = 6
FIRST_TURN_CHARS = 140
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


_SEP = "\x1e"  # between message texts in the text blob; `clean` removes it from any text


def _content(m: dict[str, Any]) -> str:
    c = m.get("content")
    return (c if isinstance(c, str) else "" if c is None else str(c)).replace(_SEP, "")


def _extra(meta: dict[str, Any], idx: int) -> dict[str, Any]:
    """What a message shows besides its text: a strategy not in the library, a step, a seed mark."""
    label = "" if idx >= 0 or not meta.get("strategy") else cut(meta.get("strategy"), 120)
    step = cut(meta.get("step"), 80) if meta.get("step") else ""
    return {k: v for k, v in (("label", label), ("step", step), ("seed", int(bool(meta.get("seed"))))) if v}


def _messages(
    msgs: list[Any], strategy_index: dict[str, int], texts: list[str]
) -> tuple[list[str], list[int], dict[str, Any]]:
    """Role codes, strategy index per message (-1: none) and extras; the texts go to `texts`."""
    roles, strat, extra = [], [], {}
    for k, m in enumerate(x if isinstance(x, dict) else {"role": "system", "content": x} for x in msgs):
        meta = m.get("meta") or {}
        sid = meta.get("strategy_id")
        idx = strategy_index.get(str(sid), -1) if sid else -1
        roles.append(ROLE_CODES.get(str(m.get("role")), "s"))
        strat.append(idx)
        texts.append(_content(m))
        if meta and (e := _extra(meta, idx)):
            extra[str(k)] = e
    return roles, strat, extra


def _conv_row(
    ids: tuple[int, int], c: dict[str, Any], sc: dict[str, Any], strategy_index: dict[str, int], cols: list[Metric],
    texts: list[str],
) -> list[Any]:  # fmt: skip
    """[simulator, id, reason, strategies used, metric values, roles, strategy per message (0: none),
    extras by message index (0: none), seed id, first user turn cut]; the texts go to `texts`
    (the first user turn is also here, so the page draws its rows before the texts are decoded)."""
    start = len(texts)
    roles, strat, extra = _messages(c["messages"], strategy_index, texts)
    used = sorted({i for i in strat if i >= 0})
    vals = [v if isinstance(v := sc.get(m.name), int | float) else None for m in cols]
    seed = clean((c.get("meta") or {}).get("seed_id") or "")
    opening = next((cut(texts[start + k], FIRST_TURN_CHARS) for k, r in enumerate(roles) if r == "u"), "")
    return [ids[0], clean(c["id"]), ids[1], used, vals, "".join(roles), strat if used else 0, extra or 0, seed, opening]


@dataclass
class Payload:
    meta: dict[str, Any]  # names, strategies, metrics, one row per dialogue
    text: str  # every message text in order, separated by \x1e, control characters removed


def build(runs: list[Run]) -> Payload:
    """The page's data: lists of names plus one row per dialogue (indexes into those lists), and
    the texts apart, as one string the page searches with one `indexOf` scan."""
    strategies = strategy_rows(runs)
    strategy_index = {s["id"]: i for i, s in enumerate(strategies)}
    cols = browse_metrics(runs)
    sims = [s for r in runs for s in r.sims]
    reasons: dict[str, int] = {}
    convs: list[list[Any]] = []
    texts: list[str] = []
    for si, s in enumerate(sims):
        for c in s.conversations:
            reason = str((c.get("meta") or {}).get("termination_reason") or "none")
            ri = reasons.setdefault(clean(reason), len(reasons))
            convs.append(_conv_row((si, ri), c, s.scores.get(str(c["id"]), {}), strategy_index, cols, texts))
    meta = {
        "sims": [clean(s.label) for s in sims],
        "reasons": list(reasons),
        "strategies": strategies,
        "metrics": [{"name": m.name, "desc": m.description, "dir": m.direction, "digits": decimals(m)} for m in cols],
        "convs": convs,
    }
    return Payload(meta, clean(_SEP.join(texts), keep_separator=True))


def _pack(raw: bytes) -> str:
    # mtime 0: the same data gives the same bytes
    return base64.b64encode(gzip.compress(raw, compresslevel=COMPRESS_LEVEL, mtime=0)).decode("ascii")


def encode(p: Payload) -> tuple[str, str]:
    """gzip + base64 of the meta JSON and of the UTF-8 text."""
    return _pack(orjson.dumps(p.meta)), _pack(p.text.encode("utf-8"))


def decode(meta: str, text: str) -> Payload:
    """The inverse of `encode` (tests and tools)."""
    m = orjson.loads(gzip.decompress(base64.b64decode(meta)))
    return Payload(m, gzip.decompress(base64.b64decode(text)).decode("utf-8"))


def messages(p: Payload, i: int) -> list[tuple[str, str]]:
    """(role code, text) of dialogue `i`, as the page reads them."""
    texts = p.text.split(_SEP)
    start = sum(len(c[5]) for c in p.meta["convs"][:i])
    row = p.meta["convs"][i]
    return list(zip(row[5], texts[start : start + len(row[5])], strict=True))
