"""`dialforge score`: per-conversation and per-dataset metrics, written beside the data."""

from __future__ import annotations

import logging
import statistics
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from ..config import INPUT_FILE
from ..conversation import Conversation
from ..errors import DialforgeError, RecordError
from ..io.reader import OnError, ReadReport, atomic_write_bytes, atomic_writer
from ..io.reader import iter_conversations_located as iter_located
from ..llm.client import run_sync
from ..llm.config import BackendConfig
from . import metrics as M

log = logging.getLogger("dialforge.score")


class ScoreConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    self_bleu_sample: int = Field(100, ge=2)
    embedding_sample: int = Field(500, ge=2)
    embedder: str | None = Field("all-MiniLM-L6-v2", description="None to skip embedding diversity")
    embedding_cache: str | None = Field(
        None, description="embedding cache folder (default: the embedder's, $DIALFORGE_CACHE/embeddings)"
    )
    library: Annotated[str | None, INPUT_FILE] = Field(
        None, description="strategy library, for coverage (strategy mode)"
    )
    judge: BackendConfig | None = None
    seed: int = 0
    concurrency: int = Field(16, ge=1)


def locate(path: str | Path) -> tuple[Path, Path, Path]:
    """(conversations file, per-conversation scores, dataset summary) for a file or run dir."""
    p = Path(path)
    if p.is_dir():
        data = p / "conversations.jsonl"
        if not data.exists():
            raise DialforgeError(f"{p}: no conversations.jsonl in this run directory")
        return data, p / "scores.jsonl", p / "scores_summary.json"
    stem = p.name.rsplit(".", 1)[0]
    return p, p.with_name(stem + ".scores.jsonl"), p.with_name(stem + ".scores_summary.json")


def _number(v: Any, field: str, kinds: tuple[type, ...] = (int, float)) -> Any:
    if v is None or (isinstance(v, kinds) and not (isinstance(v, bool) and bool not in kinds)):
        return v
    raise RecordError(f"expected {' or '.join(k.__name__ for k in kinds)}, got {type(v).__name__}", field=field)


def _strategies(conv: Conversation) -> list[Any]:
    out = []
    for i, m in enumerate(conv.messages):
        if m.role == "user" and "strategy_id" in m.meta:
            sid = m.meta["strategy_id"]
            if not isinstance(sid, (str, int)) or isinstance(sid, bool):
                raise RecordError(
                    f"expected a string, got {type(sid).__name__}", field=f"messages[{i}].meta.strategy_id"
                )
            out.append(sid)
    return out


def _workflow(conv: Conversation, s: dict[str, Any]) -> None:
    wf = conv.meta.get("workflow_eval")
    if wf is None:
        return
    if not isinstance(wf, dict):
        raise RecordError(f"expected an object, got {type(wf).__name__}", field="meta.workflow_eval")
    kinds: dict[str, tuple[type, ...]] = {"depth": (int,), "relative_depth": (int, float), "success": (bool,)}
    for k, allowed in kinds.items():
        if k in wf:
            s[f"workflow_{k}"] = _number(wf[k], f"meta.workflow_eval.{k}", allowed)


def conversation_scores(conv: Conversation) -> dict[str, Any]:
    """Per-conversation scores (see the registry). Each user text is tokenised once. A score
    input of the wrong type (`workflow_eval.depth` text, `strategy_id` a list) raises a
    RecordError naming the field."""
    users = [m.content for m in conv.messages if m.role == "user"]
    user_words = [M.words(t) for t in users]
    s: dict[str, Any] = {"id": conv.id, "user_turns": len(users), "messages": len(conv.messages)}
    assistants = [m.content for m in conv.messages if m.role == "assistant"]
    s["user_chars"] = sum(len(t) for t in users)
    s["user_tokens"] = sum(len(w) for w in user_words)
    s["assistant_chars"] = sum(len(t) for t in assistants)
    s["assistant_tokens"] = sum(len(M.words(t)) for t in assistants)
    s["distinct_1"] = round(M.distinct_words(user_words, 1), 4)
    s["distinct_2"] = round(M.distinct_words(user_words, 2), 4)
    s["mtld"] = round(M.mtld([w for ws in user_words for w in ws]), 3)
    body = conv.dialogue()
    pairs = [
        (body[i].content, body[i - 1].content)
        for i in range(1, len(body))
        if body[i].role == "user" and body[i - 1].role == "assistant"
    ]
    s["follow_ups"] = sum(M.is_follow_up(q, a) for q, a in pairs)
    s["follow_up_rate"] = round(s["follow_ups"] / len(pairs), 4) if pairs else None
    strategies = _strategies(conv)
    if strategies:
        s["strategies"] = strategies
    s["termination_reason"] = conv.meta.get("termination_reason")
    for k in ("mode", "simulator_model", "assistant_model", "seed_id"):
        if k in conv.meta:
            s[k] = conv.meta[k]
    _workflow(conv, s)
    s["_follow_up_eligible"] = sum(1 for i, m in enumerate(body) if i > 0 and m.role == "user")
    return s


def _mean(xs: list[float]) -> float | None:
    return round(statistics.fmean(xs), 4) if xs else None


class DatasetScores:
    """Dataset scores accumulated one conversation at a time (`score` streams the file)."""

    def __init__(self, cfg: ScoreConfig) -> None:
        self.cfg = cfg
        self.users: list[str] = []
        self.user_words: list[str] = []
        self.grams: tuple[set[tuple[str, ...]], set[tuple[str, ...]]] = (set(), set())
        self.gram_counts = [0, 0]
        self.per: list[dict[str, Any]] = []
        self._vocab: dict[str, str] = {}

    def add(self, conv: Conversation, per: dict[str, Any]) -> None:
        slim = {k: per.get(k) for k in _SUMMARY_KEYS if k in per}
        self.per.append(slim)
        for m in conv.messages:
            if m.role != "user":
                continue
            self.users.append(m.content)
            w = [self._vocab.setdefault(x, x) for x in M.words(m.content)]
            self.user_words.extend(w)
            for n, grams in ((1, self.grams[0]), (2, self.grams[1])):
                g = [tuple(w[i : i + n]) for i in range(len(w) - n + 1)]
                grams.update(g)
                self.gram_counts[n - 1] += len(g)

    def result(self) -> dict[str, Any]:
        cfg, per, users = self.cfg, self.per, self.users
        out: dict[str, Any] = {
            "conversations": len(per),
            "user_turns_mean": _mean([p["user_turns"] for p in per]),
            "user_chars_mean": _mean([p["user_chars"] / max(p["user_turns"], 1) for p in per]),
            "assistant_chars_mean": _mean([p["assistant_chars"] for p in per]),
            "distinct_1": round(len(self.grams[0]) / self.gram_counts[0], 4) if self.gram_counts[0] else 0.0,
            "distinct_2": round(len(self.grams[1]) / self.gram_counts[1], 4) if self.gram_counts[1] else 0.0,
            "mtld": round(M.mtld(self.user_words), 3),
            "self_bleu": round(M.self_bleu(users, cfg.self_bleu_sample, cfg.seed), 4),
            "termination_reasons": dict(Counter(p["termination_reason"] or "none" for p in per)),
        }
        eligible = sum(p["_follow_up_eligible"] for p in per)
        out["follow_up_rate"] = round(sum(p["follow_ups"] for p in per) / eligible, 4) if eligible else None
        if cfg.embedder and len(users) >= 2:
            from ..induce.embed import Embedder

            vecs = Embedder(cfg.embedder, cache_dir=cfg.embedding_cache).embed(
                M.sample(users, cfg.embedding_sample, cfg.seed)
            )
            out.update({f"embedding_{k}": round(v, 4) for k, v in M.embedding_diversity(vecs).items()})
        self._strategies(out)
        for k in ("workflow_depth", "workflow_relative_depth", "workflow_success"):
            vals = [float(p[k]) for p in per if p.get(k) is not None]
            if vals:
                out[k] = _mean(vals)
        self._judge(out)
        return out

    def _strategies(self, out: dict[str, Any]) -> None:
        strat = Counter(str(s) for p in self.per for s in p.get("strategies") or [])
        if strat:
            out["strategies_used"] = len(strat)
            out["strategy_entropy_bits"] = round(M.entropy_bits(strat), 4)
            if self.cfg.library:
                from ..induce.library import StrategyLibrary

                size = len(StrategyLibrary.load(self.cfg.library).strategies)
                out["strategy_coverage"] = round(len(strat) / size, 4)

    def _judge(self, out: dict[str, Any]) -> None:
        per = self.per
        judged = [p["judge"] for p in per if isinstance(p.get("judge"), dict) and "mean" in p["judge"]]
        if judged:
            from .judge import CRITERIA

            out["judge"] = {c: _mean([j[c] for j in judged]) for c in (*CRITERIA, "mean")}
            out["judge"]["judged"] = len(judged)
            out["judge"]["unparsed"] = sum(1 for p in per if isinstance(p.get("judge"), dict) and "error" in p["judge"])


_SUMMARY_KEYS = (
    "user_turns",
    "user_chars",
    "assistant_chars",
    "termination_reason",
    "follow_ups",
    "_follow_up_eligible",
    "strategies",
    "workflow_depth",
    "workflow_relative_depth",
    "workflow_success",
    "judge",
)


def dataset_scores(convs: list[Conversation], per: list[dict[str, Any]], cfg: ScoreConfig) -> dict[str, Any]:
    acc = DatasetScores(cfg)
    for c, p in zip(convs, per, strict=True):
        acc.add(c, p)
    return acc.result()


def _scored(data: Path, on_error: OnError, report: ReadReport) -> Iterator[tuple[Conversation, dict[str, Any]]]:
    for conv, line, index in iter_located(data, on_error=on_error, report=report):
        try:
            per = conversation_scores(conv)
        except RecordError as e:
            err = RecordError(e.message, path=data, line=line, index=None if line else index, field=e.field)
            if on_error == "fail":
                raise err from None
            report.skipped.append(err)
            log.warning("skipped bad record: %s", err)
            continue
        yield conv, per


def _row(per: dict[str, Any]) -> bytes:
    return orjson.dumps({k: v for k, v in per.items() if not k.startswith("_")}) + b"\n"


def score(path: str | Path, cfg: ScoreConfig | None = None, *, on_error: OnError = "skip") -> dict[str, Any]:
    """Score a file or run directory. Without a judge the file streams: one conversation in
    memory at a time plus what the dataset metrics keep (user texts and word n-grams)."""
    cfg = cfg or ScoreConfig()
    data, per_path, summary_path = locate(path)
    report = ReadReport(path=str(data))
    acc = DatasetScores(cfg)
    with atomic_writer(per_path) as f:
        if cfg.judge is None:
            for conv, per in _scored(data, on_error, report):
                acc.add(conv, per)
                f.write(_row(per))
        else:
            pairs = list(_scored(data, on_error, report))
            convs = [c for c, _ in pairs]
            if convs:
                from .judge_stage import judge_conversations, judge_dir

                verdicts, _ = run_sync(
                    judge_conversations(convs, cfg.judge, judge_dir(path), concurrency=cfg.concurrency)
                )
                for c, p in pairs:
                    if c.id in verdicts:
                        p["judge"] = verdicts[c.id]
            for c, p in pairs:
                acc.add(c, p)
                f.write(_row(p))
        if not acc.per:
            raise DialforgeError(f"{data}: no conversations to score")
    summary = acc.result()
    if report.skipped:
        summary["skipped_records"] = len(report.skipped)
    atomic_write_bytes(
        summary_path,
        orjson.dumps(
            {"source": str(data), "config": cfg.model_dump(mode="json"), "dataset": summary}, option=orjson.OPT_INDENT_2
        ),
    )
    return summary
