"""`dialforge score`: per-conversation and per-dataset metrics, written beside the data."""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from ..config import INPUT_FILE, OPERATIONAL
from ..conversation import Conversation
from ..errors import DialforgeError
from ..io.reader import atomic_write_bytes, read_conversations
from ..llm.client import run_sync
from ..llm.config import BackendConfig
from . import metrics as M


class ScoreConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    self_bleu_sample: int = Field(100, ge=2)
    embedding_sample: int = Field(500, ge=2)
    embedder: str | None = Field("all-MiniLM-L6-v2", description="None to skip embedding diversity")
    library: Annotated[str | None, INPUT_FILE] = Field(
        None, description="strategy library, for coverage (strategy mode)"
    )
    judge: BackendConfig | None = None
    seed: int = 0
    concurrency: Annotated[int, OPERATIONAL] = Field(16, ge=1, description="judge requests in flight at once")


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


def conversation_scores(conv: Conversation) -> dict[str, Any]:
    users = [m.content for m in conv.messages if m.role == "user"]
    s: dict[str, Any] = {"id": conv.id, "user_turns": len(users), "messages": len(conv.messages)}
    for role in ("user", "assistant"):
        texts = [m.content for m in conv.messages if m.role == role]
        s[f"{role}_chars"] = sum(len(t) for t in texts)
        s[f"{role}_tokens"] = sum(len(M.words(t)) for t in texts)
    s["distinct_1"] = round(M.distinct_n(users, 1), 4)
    s["distinct_2"] = round(M.distinct_n(users, 2), 4)
    s["mtld"] = round(M.mtld([w for u in users for w in M.words(u)]), 3)
    body = conv.dialogue()
    pairs = [
        (body[i].content, body[i - 1].content)
        for i in range(1, len(body))
        if body[i].role == "user" and body[i - 1].role == "assistant"
    ]
    s["follow_ups"] = sum(M.is_follow_up(q, a) for q, a in pairs)
    s["follow_up_rate"] = round(s["follow_ups"] / len(pairs), 4) if pairs else None
    strategies = [m.meta["strategy_id"] for m in conv.messages if m.role == "user" and "strategy_id" in m.meta]
    if strategies:
        s["strategies"] = strategies
    s["termination_reason"] = conv.meta.get("termination_reason")
    for k in ("mode", "simulator_model", "assistant_model", "seed_id"):
        if k in conv.meta:
            s[k] = conv.meta[k]
    wf = conv.meta.get("workflow_eval")
    if isinstance(wf, dict):
        for k in ("depth", "relative_depth", "success"):
            if k in wf:
                s[f"workflow_{k}"] = wf[k]
    return s


def _mean(xs: list[float]) -> float | None:
    return round(statistics.fmean(xs), 4) if xs else None


def dataset_scores(convs: list[Conversation], per: list[dict[str, Any]], cfg: ScoreConfig) -> dict[str, Any]:
    users = [m.content for c in convs for m in c.messages if m.role == "user"]
    out: dict[str, Any] = {
        "conversations": len(convs),
        "user_turns_mean": _mean([p["user_turns"] for p in per]),
        "user_chars_mean": _mean([p["user_chars"] / max(p["user_turns"], 1) for p in per]),
        "assistant_chars_mean": _mean([p["assistant_chars"] for p in per]),
        "distinct_1": round(M.distinct_n(users, 1), 4),
        "distinct_2": round(M.distinct_n(users, 2), 4),
        "mtld": round(M.mtld([w for u in users for w in M.words(u)]), 3),
        "self_bleu": round(M.self_bleu(users, cfg.self_bleu_sample, cfg.seed), 4),
        "termination_reasons": dict(Counter(p["termination_reason"] or "none" for p in per)),
    }
    eligible = sum(1 for c in convs for i, m in enumerate(c.dialogue()) if i > 0 and m.role == "user")
    out["follow_up_rate"] = round(sum(p["follow_ups"] for p in per) / eligible, 4) if eligible else None
    if cfg.embedder and len(users) >= 2:
        from ..induce.embed import Embedder

        vecs = Embedder(cfg.embedder).embed(M.sample(users, cfg.embedding_sample, cfg.seed))
        out.update({f"embedding_{k}": round(v, 4) for k, v in M.embedding_diversity(vecs).items()})
    strat = Counter(s for p in per for s in p.get("strategies", []))
    if strat:
        out["strategies_used"] = len(strat)
        out["strategy_entropy_bits"] = round(M.entropy_bits(strat), 4)
        if cfg.library:
            from ..induce.library import StrategyLibrary

            size = len(StrategyLibrary.load(cfg.library).strategies)
            out["strategy_coverage"] = round(len(strat) / size, 4)
    for k in ("workflow_depth", "workflow_relative_depth", "workflow_success"):
        vals = [float(p[k]) for p in per if p.get(k) is not None]
        if vals:
            out[k] = _mean(vals)
    judged = [p["judge"] for p in per if isinstance(p.get("judge"), dict) and "mean" in p["judge"]]
    if judged:
        from .judge import CRITERIA

        out["judge"] = {c: _mean([j[c] for j in judged]) for c in (*CRITERIA, "mean")}
        out["judge"]["judged"] = len(judged)
        out["judge"]["unparsed"] = sum(1 for p in per if isinstance(p.get("judge"), dict) and "error" in p["judge"])
    return out


def score(path: str | Path, cfg: ScoreConfig | None = None) -> dict[str, Any]:
    cfg = cfg or ScoreConfig()
    data, per_path, summary_path = locate(path)
    convs = read_conversations(data, on_error="skip")
    if not convs:
        raise DialforgeError(f"{data}: no conversations to score")
    per = [conversation_scores(c) for c in convs]
    if cfg.judge is not None:
        from .judge_stage import judge_conversations, judge_dir

        verdicts, _ = run_sync(judge_conversations(convs, cfg.judge, judge_dir(path), concurrency=cfg.concurrency))
        for c, p in zip(convs, per, strict=True):
            if c.id in verdicts:
                p["judge"] = verdicts[c.id]
    summary = dataset_scores(convs, per, cfg)
    atomic_write_bytes(per_path, b"".join(orjson.dumps(p) + b"\n" for p in per))
    atomic_write_bytes(
        summary_path,
        orjson.dumps(
            {"source": str(data), "config": cfg.model_dump(mode="json"), "dataset": summary}, option=orjson.OPT_INDENT_2
        ),
    )
    return summary
