"""`dialforge filter`: keep the conversations for which an expression over scores and meta is
true. The file form streams (one conversation and one score record in memory at a time)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from ..conversation import Conversation
from ..errors import DialforgeError, RecordError
from ..io._records import iter_records
from ..io.output import write_conversations
from ..io.reader import iter_conversations_located as iter_located
from ..io.report import OnError
from .dedup import dedup
from .expression import Expression, ExpressionError
from .registry import conversation_fields, filter_names

log = logging.getLogger("dialforge.score")

__all__ = [
    "Expression",
    "ExpressionError",
    "dedup",
    "filter_conversations",
    "filter_file",
    "flatten",
    "load_scores",
    "validate_filter",
]


def validate_filter(expr: str, extra_fields: Iterable[str] = (), *, simulated_only: bool = False) -> Expression:
    """Parse `expr` and check its names against the registered score fields, the meta fields
    (`registry.filter_names`) and `extra_fields`: for configs, before any LLM request."""
    e = Expression(expr)
    e.check_names(filter_names(simulated_only) | set(extra_fields))
    return e


def flatten(scores: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in scores.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}_"))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _env(c: Conversation, scores: dict[str, Any] | None) -> dict[str, Any]:
    env = {k: v for k, v in c.meta.items() if not isinstance(v, (dict, list))}
    if scores:
        env.update(flatten(scores))
    env.setdefault("user_turns", c.n_user_turns)
    return env


class _Names:
    """Names seen in any record, so an expression naming none of them is an error (a typo),
    not a filter that silently keeps nothing."""

    def __init__(self, expr: Expression) -> None:
        self.expr = expr
        self.missing = set(expr.names)
        self.seen: set[str] = set()

    def see(self, env: dict[str, Any]) -> None:
        if self.missing:
            self.missing -= env.keys()
            if len(self.seen) < 500:
                self.seen.update(env)

    def check(self, where: str = "", scored: bool = True) -> None:
        if not self.missing or not self.seen:
            return
        self.expr.check_names(self.seen | conversation_fields())
        # a registered name no record carries (e.g. workflow_depth outside self-talk, a score
        # on an unscored file) is no error, but it is None everywhere: say so, since the
        # filter then keeps nothing (or everything) for a reason the user cannot see
        names = ", ".join(repr(n) for n in sorted(self.missing))
        hint = "" if scored else " (no scores file: run `dialforge score` first, or pass --scores)"
        log.warning(
            "filter expression %r: no record%s has %s%s; it is None in every record, so comparisons with it are false",
            self.expr.text,
            f" of {where}" if where else "",
            names,
            hint,
        )


def filter_conversations(convs: list[Conversation], scores: dict[str, dict[str, Any]], expr: str) -> list[Conversation]:
    e = Expression(expr)
    names = _Names(e)
    kept = []
    for i, c in enumerate(convs):
        env = _env(c, scores.get(c.id))
        names.see(env)
        if _keep(e, env, f"conversation {i + 1} ({c.id})"):
            kept.append(c)
    names.check()
    return kept


def _keep(e: Expression, env: dict[str, Any], where: str) -> bool:
    try:
        return e(env)
    except ExpressionError as err:
        raise DialforgeError(f"{where}: {err}") from None


class _ScoreStream:
    """Score records in file order, matched to conversations by id. `score` writes them in
    the conversations' order, so this is a lockstep read; a file in another order falls back
    to an id index of the remainder."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._it: Iterator[tuple[Any, int | None, int]] | None = (
            iter_records(path) if path is not None and path.exists() else None
        )
        self._index: dict[str, dict[str, Any]] | None = None

    def _next(self) -> dict[str, Any] | None:
        assert self._it is not None
        for rec, line, index in self._it:
            if isinstance(rec, RecordError):
                raise rec
            if not isinstance(rec, dict) or not isinstance(rec.get("id"), str):
                raise RecordError("expected an object with a string id", path=self.path, line=line, index=index)
            return rec
        return None

    def get(self, cid: str) -> dict[str, Any] | None:
        if self._it is None:
            return None
        if self._index is None:
            rec = self._next()
            if rec is None or rec["id"] == cid:
                return rec
            self._index = {rec["id"]: rec}
            while (r := self._next()) is not None:
                self._index[r["id"]] = r
        return self._index.get(cid)


def filter_file(
    data: str | Path,
    expr: str | Expression,
    out: str | Path,
    scores: str | Path | None = None,
    *,
    on_error: OnError = "skip",
) -> tuple[int, int]:
    """Stream `data` through the expression into `out`; returns (kept, read). An expression
    error names the record and stops before `out` is replaced."""
    e = expr if isinstance(expr, Expression) else Expression(expr)
    names = _Names(e)
    stream = _ScoreStream(Path(scores) if scores is not None else None)
    counts = [0, 0]

    def kept() -> Iterator[Conversation]:
        for c, line, index in iter_located(data, on_error=on_error):
            counts[1] += 1
            env = _env(c, stream.get(c.id))
            names.see(env)
            where = f"{data}:{line}" if line else f"{data}: record {index + 1}"
            if _keep(e, env, where):
                counts[0] += 1
                yield c
        names.check(str(data), scored=stream.path is not None and stream.path.exists())

    write_conversations(kept(), out)
    return counts[0], counts[1]


def load_scores(path: Path) -> dict[str, dict[str, Any]]:
    if not path.exists():
        return {}
    return {r["id"]: r for r in map(orjson.loads, path.read_bytes().splitlines()) if r}
