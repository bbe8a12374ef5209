"""`dialforge induce`: filter -> extract -> embed -> cluster -> abstract -> StrategyLibrary.

Extraction and abstraction are stages on the kernel (`induce/stages.py`): resumable, failed
jobs retried by a re-run, any executor. LLM calls go through the run's cache, embeddings are
cached per string, and the library is written atomically.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from ..conversation import Conversation, stable_hash
from ..errors import DialforgeError
from ..io.files import atomic_write_bytes
from ..io.reader import read_conversations
from ..io.report import ReadReport
from ..llm.client import run_sync
from ..llm.pool import BackendPool
from ..run.kernel import Executor, make_executor, run_stage
from ..run.rundir import RunDir
from .cluster import cluster
from .config import InduceConfig
from .embed import Embedder, resolve_embedder
from .extract import extraction_units
from .filter import filter_dialogues
from .library import SourceTurn, Strategy, StrategyLibrary
from .stages import AbstractStage, ExtractStage, abstraction_sample

log = logging.getLogger("dialforge.induce")


MAX_CONTEXT_CHARS = 1200  # MiniLM reads ~256 tokens; longer contexts only cost space


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


async def induce_async(
    cfg: InduceConfig,
    out: str | Path,
    *,
    force_new: bool = False,
    use_cache: bool = True,
    progress: bool | None = None,
    pool: BackendPool | None = None,
) -> StrategyLibrary:
    """Filter, extract (a kernel stage), embed, cluster, abstract (a kernel stage) and write
    `library.json`. The LLM stages' health warnings are in the run's manifest
    (`dialforge.run.health.run_warnings(out)`)."""
    out = Path(out)
    resolve_embedder(cfg.embedder)  # a bad embedder path fails now, not after extraction
    convs, skipped = _read(cfg)
    kept, dropped = filter_dialogues(convs, cfg.filter)
    all_units = [u for c in kept for u in extraction_units(c, cfg.include_first_turn)]
    units = distinct_units(all_units)
    if not units:
        raise DialforgeError(
            f"{', '.join(cfg.dialogues)}: no user turns to extract ({len(convs)} dialogues read, "
            f"{len(kept)} kept after filtering; only follow-up turns are extracted unless "
            "include_first_turn is set)"
        )
    counts = {
        "dialogues_read": len(convs),
        "dialogues_kept": len(kept),
        "dropped": dict(dropped),
        "turns": len(all_units),
        "distinct_turns": len(units),
    }
    with RunDir(
        out, command="induce", config=cfg, models={"extract": cfg.model.model}, force_new=force_new, use_cache=use_cache
    ) as run:
        log.info(
            "read %d dialogues (%d bad records skipped); kept %d; dropped %s",
            len(convs),
            skipped,
            len(kept),
            dict(dropped),
        )
        run.stage_done("filter", read=len(convs), kept=len(kept), dropped=dict(dropped), bad_records_skipped=skipped)
        executor = make_executor(cfg.executor, pool)
        res = await run_stage(
            ExtractStage(cfg.model, units, cfg.concurrency), run, executor=executor, progress=progress
        )
        records = [r for r in res.records if "strategy" in r]
        if not records:
            raise DialforgeError(
                f"extraction produced no strategies ({len(res.records)} failures; see {run.path / 'extracted.jsonl'} "
                f"and {run.path / 'run.log'})"
            )
        return await _cluster_and_abstract(cfg, run, executor, records, progress, counts)


def _read(cfg: InduceConfig) -> tuple[list[Conversation], int]:
    convs: list[Conversation] = []
    skipped = 0
    for path in cfg.dialogues:
        rep = ReadReport(path=path)
        convs.extend(read_conversations(path, cfg.format, on_error=cfg.on_error, report=rep))
        skipped += len(rep.skipped)
    if cfg.max_dialogues:
        convs = convs[: cfg.max_dialogues]
    return convs, skipped


async def _cluster_and_abstract(
    cfg: InduceConfig,
    run: RunDir,
    executor: Executor,
    records: list[dict[str, Any]],
    progress: bool | None,
    counts: dict[str, Any],
) -> StrategyLibrary:
    freq = Counter(r["strategy"] for r in records)  # distinct turns, not source threads
    originals = sorted(freq)  # sorted: order-independent input to clustering
    emb = _embed(cfg, run, originals, progress)
    orig_id = {t: stable_hash("strategy", t, length=12) for t in originals}
    clusters = _clusters(cfg, run, emb, originals, freq, orig_id)
    # singletons too: a raw extracted phrase is not a high-level strategy
    samples = {sid: abstraction_sample(texts, cfg.abstract_sample, cfg.seed, sid) for sid, texts in clusters.items()}
    res = await run_stage(AbstractStage(cfg.model, samples, cfg.concurrency), run, executor=executor, progress=progress)
    abstracted = {r["id"]: r["text"] for r in res.records if "text" in r}
    strategies = _strategies(cfg, clusters, abstracted, records, emb, originals, orig_id)
    cluster_of = {orig_id[t]: sid for sid, texts in clusters.items() for t in texts}
    _write_assignments(run, originals, freq, orig_id, cluster_of, records)
    lib = StrategyLibrary(
        created_at=run.manifest.get("created_at", _now()),  # a resumed run rewrites the same bytes
        embedder=cfg.embedder,
        threshold=cfg.threshold,
        method=cfg.method,
        abstraction_model=cfg.model.model,
        sources=[str(p) for p in cfg.dialogues],
        counts={
            **counts,
            "extracted": len(records),
            "original_strategies": len(originals),
            "clusters": len(strategies),
            "singletons": sum(1 for s in strategies if len(s.members) == 1),
        },
        strategies=strategies,
    )
    lib.save(run.path / "library.json")
    run.stage_done("library", **lib.counts)
    return lib


def _clusters(
    cfg: InduceConfig,
    run: RunDir,
    emb: np.ndarray,
    originals: list[str],
    freq: Counter[str],
    orig_id: dict[str, str],
) -> dict[str, list[str]]:
    """Strategy id (a hash of its members) -> member texts, most frequent first."""
    run.usage.start_stage("cluster")
    labels = cluster(emb, cfg.threshold, cfg.method, k=cfg.knn)
    run.usage.end_stage("cluster")
    groups: dict[int, list[int]] = {}
    for i, lab in enumerate(labels):
        groups.setdefault(int(lab), []).append(i)
    if cfg.singletons == "merge":
        groups = _merge_singletons(groups, emb)
    clusters: dict[str, list[str]] = {}
    for members in groups.values():
        texts = sorted((originals[i] for i in members), key=lambda t: (-freq[t], t))
        clusters["s-" + stable_hash("cluster", sorted(orig_id[t] for t in texts), length=10)] = texts
    return clusters


def _strategies(
    cfg: InduceConfig,
    clusters: dict[str, list[str]],
    abstracted: dict[str, str],
    records: list[dict[str, Any]],
    emb: np.ndarray,
    originals: list[str],
    orig_id: dict[str, str],
) -> list[Strategy]:
    """The library's entries, largest first."""
    row = {t: i for i, t in enumerate(originals)}
    by_text: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_text.setdefault(r["strategy"], []).append(r)
    out = [
        _strategy(cfg, sid, texts, abstracted.get(sid), by_text, emb[[row[t] for t in texts]], orig_id)
        for sid, texts in clusters.items()
    ]
    return sorted(out, key=lambda s: (-s.size, s.id))


def _embed(cfg: InduceConfig, run: RunDir, texts: list[str], progress: bool | None) -> np.ndarray:
    """Each distinct strategy embedded once (cached in the run directory)."""
    embedder = Embedder(cfg.embedder, cache_dir=run.path)
    run.usage.start_stage("embed")
    emb = embedder.embed(texts, show_progress=bool(progress))
    run.usage.end_stage("embed")
    np.save(run.path / "embeddings.npy", emb)
    return emb


def _strategy(
    cfg: InduceConfig,
    sid: str,
    texts: list[str],
    abstracted: str | None,
    by_text: dict[str, list[dict[str, Any]]],
    vectors: np.ndarray,
    orig_id: dict[str, str],
) -> Strategy:
    """One library entry; a failed abstraction falls back to the most frequent member."""
    if abstracted is None:
        log.warning("abstraction failed for a cluster of %d; using its most frequent member", len(texts))
    turns = sorted((r for t in texts for r in by_text[t]), key=lambda r: (r["conversation_id"], r["turn_index"]))
    centroid = vectors.mean(axis=0)
    centroid /= max(float(np.linalg.norm(centroid)), 1e-12)
    return Strategy(
        id=sid,
        text=abstracted or texts[0],
        size=len(turns),
        members=sorted(orig_id[t] for t in texts),
        examples=[
            SourceTurn(
                conversation_id=r["conversation_id"],
                turn_index=r["turn_index"],
                instruction=r["instruction"],
                strategy=r["strategy"],
            )
            for r in turns[: cfg.examples_per_strategy]
        ],
        centroid=[round(float(v), 6) for v in centroid],
        abstracted=abstracted is not None,
        contexts=_contexts(turns, cfg.contexts_per_strategy, cfg.seed),
    )


def _write_assignments(
    run: RunDir,
    originals: list[str],
    freq: Counter[str],
    orig_id: dict[str, str],
    cluster_of: dict[str, str],
    records: list[dict[str, Any]],
) -> None:
    """Beside the library: which cluster each original strategy and each turn fell in, so a
    re-abstraction needs no re-embedding."""
    atomic_write_bytes(
        run.path / "originals.jsonl",
        b"".join(
            orjson.dumps(
                {"id": orig_id[t], "text": t, "count": freq[t], "row": i, "strategy_id": cluster_of[orig_id[t]]}
            )
            + b"\n"
            for i, t in enumerate(originals)
        ),
    )
    atomic_write_bytes(
        run.path / "assignments.jsonl",
        b"".join(
            orjson.dumps(
                {
                    "id": r["id"],
                    "conversation_id": r["conversation_id"],
                    "turn_index": r["turn_index"],
                    "strategy": r["strategy"],
                    "strategy_id": cluster_of[orig_id[r["strategy"]]],
                }
            )
            + b"\n"
            for r in records
        ),
    )


def distinct_units(units: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One unit per distinct (history, instruction): OASST threads of one tree share prefixes,
    so the same turn appears in several threads. Counting it once keeps cluster sizes honest;
    `weight` is the number of source threads and `sources` lists them."""
    out: dict[str, dict[str, Any]] = {}
    for u in units:
        key = stable_hash("extract", u["history"], u["instruction"])
        if key in out:
            out[key]["weight"] += 1
            out[key]["sources"].append([u["conversation_id"], u["turn_index"]])
        else:
            out[key] = {**u, "id": key, "weight": 1, "sources": [[u["conversation_id"], u["turn_index"]]]}
    return list(out.values())


def _contexts(turns: list[dict[str, Any]], limit: int, seed: int) -> list[str]:
    """Distinct assistant answers that preceded the strategy's turns (provenance ranker)."""
    seen: dict[str, None] = {}
    for r in turns:
        hist = r.get("history") or []
        if hist and hist[-1]["role"] == "assistant" and hist[-1]["content"].strip():
            seen.setdefault(hist[-1]["content"][:MAX_CONTEXT_CHARS], None)
    texts = list(seen)
    if len(texts) > limit:
        texts = sorted(random.Random(stable_hash(seed, texts[0])).sample(texts, limit))
    return texts


def _merge_singletons(groups: dict[int, list[int]], emb: np.ndarray) -> dict[int, list[int]]:
    """Attach each singleton to the nearest multi-member cluster (by centroid)."""
    big = {k: m for k, m in groups.items() if len(m) > 1}
    if not big:
        return groups
    keys = list(big)
    cents = np.stack([emb[big[k]].mean(axis=0) for k in keys])
    cents /= np.linalg.norm(cents, axis=1, keepdims=True)
    for m in groups.values():
        if len(m) == 1:
            big[keys[int(np.argmax(cents @ emb[m[0]]))]].append(m[0])
    return big


def induce(cfg: InduceConfig, out: str | Path, **kw: Any) -> StrategyLibrary:
    return run_sync(induce_async(cfg, out, **kw))
