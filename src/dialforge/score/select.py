"""`dialforge filter` (safe expressions over scores and meta) and `dialforge dedup`."""

from __future__ import annotations

import ast
import hashlib
import operator
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..conversation import Conversation
from ..errors import DialforgeError

_BIN = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Mod: operator.mod,
}
_CMP = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}


class Expression:
    """A filter expression: comparisons, `and`/`or`/`not`, arithmetic, `in`, lists, names of
    scores or meta fields (e.g. `user_turns >= 3 and termination_reason != "error"`).
    Nothing else is evaluated: no calls, no attributes."""

    def __init__(self, text: str) -> None:
        self.text = text
        try:
            self.tree = ast.parse(text, mode="eval").body
        except SyntaxError as e:
            raise DialforgeError(f"filter expression {text!r}: syntax error at column {e.offset}") from None
        for node in ast.walk(self.tree):
            if isinstance(node, (ast.Call, ast.Attribute, ast.Subscript, ast.Lambda, ast.NamedExpr)):
                raise DialforgeError(f"filter expression {text!r}: {type(node).__name__.lower()} is not allowed")
        self.names = {n.id for n in ast.walk(self.tree) if isinstance(n, ast.Name)} - {"None", "True", "False"}

    def check_names(self, available: set[str]) -> None:
        unknown = sorted(self.names - available)
        if unknown:
            raise DialforgeError(
                f"filter expression {self.text!r}: unknown name {unknown[0]!r} "
                f"(available: {', '.join(sorted(available))})"
            )

    def __call__(self, env: dict[str, Any]) -> bool:
        try:
            return bool(self._eval(self.tree, env))
        except TypeError:
            return False  # e.g. a comparison with a missing (None) score: not kept

    def _eval(self, node: ast.AST, env: dict[str, Any]) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return {"None": None, "True": True, "False": False}.get(node.id, env.get(node.id))
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            return [self._eval(e, env) for e in node.elts]
        if isinstance(node, ast.BoolOp):
            vals = (self._eval(v, env) for v in node.values)
            return all(vals) if isinstance(node.op, ast.And) else any(vals)
        if isinstance(node, ast.UnaryOp):
            v = self._eval(node.operand, env)
            if isinstance(node.op, ast.Not):
                return not v
            if isinstance(node.op, ast.USub):
                return -v
        if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
            return _BIN[type(node.op)](self._eval(node.left, env), self._eval(node.right, env))
        if isinstance(node, ast.Compare):
            left = self._eval(node.left, env)
            for op, comp in zip(node.ops, node.comparators, strict=True):
                right = self._eval(comp, env)
                if not _CMP[type(op)](left, right):
                    return False
                left = right
            return True
        raise DialforgeError(f"filter expression {self.text!r}: {type(node).__name__} is not supported")


def flatten(scores: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in scores.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}_"))
        else:
            out[f"{prefix}{k}"] = v
    return out


def filter_conversations(convs: list[Conversation], scores: dict[str, dict[str, Any]], expr: str) -> list[Conversation]:
    e = Expression(expr)
    envs = []
    for c in convs:
        env = {k: v for k, v in c.meta.items() if not isinstance(v, (dict, list))}
        env.update(flatten(scores.get(c.id, {})))
        env.setdefault("user_turns", c.n_user_turns)
        envs.append(env)
    available = set().union(*(env.keys() for env in envs)) if envs else set()
    e.check_names(available)
    return [c for c, env in zip(convs, envs, strict=True) if e(env)]


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower()).strip()


def _text(c: Conversation) -> str:
    return "\n".join(m.content for m in c.dialogue())


def dedup(
    convs: list[Conversation],
    *,
    near: float | None = 0.8,
    embedding: float | None = None,
    embedder: str = "all-MiniLM-L6-v2",
    num_perm: int = 128,
) -> tuple[list[Conversation], list[dict[str, Any]]]:
    """Exact, then MinHash near-duplicate (Jaccard of word 3-gram shingles >= `near`), then
    embedding (cosine >= `embedding`) deduplication. The first occurrence is kept; every
    removal is reported with its reason and the id it duplicates."""
    removed: list[dict[str, Any]] = []
    kept: list[Conversation] = []
    seen: dict[str, str] = {}
    for c in convs:
        h = hashlib.sha256(_norm(_text(c)).encode()).hexdigest()
        if h in seen:
            removed.append({"id": c.id, "reason": "exact", "duplicate_of": seen[h]})
        else:
            seen[h] = c.id
            kept.append(c)
    if near is not None and kept:
        from datasketch import MinHash, MinHashLSH

        lsh = MinHashLSH(threshold=near, num_perm=num_perm)
        survivors = []
        for c in kept:
            w = _norm(_text(c)).split()
            shingles = {" ".join(w[i : i + 3]) for i in range(max(1, len(w) - 2))}
            mh = MinHash(num_perm=num_perm, seed=1)
            for s in shingles:
                mh.update(s.encode())
            hits = lsh.query(mh)
            if hits:
                removed.append(
                    {
                        "id": c.id,
                        "reason": f"near-duplicate (MinHash Jaccard >= {near})",
                        "duplicate_of": sorted(hits)[0],
                    }
                )
                continue
            lsh.insert(c.id, mh)
            survivors.append(c)
        kept = survivors
    if embedding is not None and len(kept) > 1:
        from ..induce.embed import Embedder

        vecs = Embedder(embedder).embed([_text(c)[:2000] for c in kept])
        survivors, chosen = [], np.zeros((0, vecs.shape[1]), dtype=np.float32)
        for c, v in zip(kept, vecs, strict=True):
            if len(chosen):
                sims = chosen @ v
                j = int(np.argmax(sims))
                if sims[j] >= embedding:
                    removed.append(
                        {
                            "id": c.id,
                            "reason": f"embedding cosine {sims[j]:.3f} >= {embedding}",
                            "duplicate_of": survivors[j].id,
                        }
                    )
                    continue
            survivors.append(c)
            chosen = np.vstack([chosen, v[None]])
        kept = survivors
    return kept, removed


def load_scores(path: Path) -> dict[str, dict[str, Any]]:
    import orjson

    if not path.exists():
        return {}
    return {r["id"]: r for r in map(orjson.loads, path.read_bytes().splitlines()) if r}
