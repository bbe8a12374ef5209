"""`dialforge induce`: filter -> extract -> embed -> cluster -> abstract -> StrategyLibrary.

Every stage is resumable: extraction records are appended per turn id, LLM calls go through
the run's cache, embeddings are cached per string, and the library is written atomically.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field

from ..config import INPUT_FILE, OPERATIONAL
from ..conversation import stable_hash
from ..errors import DialforgeError
from ..io.reader import ReadReport, atomic_write_bytes, read_conversations
from ..llm.client import LLM, run_sync
from ..llm.config import BackendConfig, BackendPool, borrow_pool
from ..llm.types import SamplingParams
from ..progress import stage_progress
from ..run.rundir import RunDir
from .cluster import cluster
from .embed import DEFAULT_EMBEDDER, Embedder, resolve_embedder
from .extract import ExtractedStrategy, clean_strategy, extraction_messages, extraction_units
from .filter import FilterConfig, filter_dialogues
from .library import SourceTurn, Strategy, StrategyLibrary

log = logging.getLogger("dialforge.induce")


class HighLevelStrategy(BaseModel):
    strategy: str = Field(description="one high-level strategy phrase covering all the examples")


# The published abstraction prompt gives the model a definition of a high-level strategy
# (reference/ideas.md §3.2); this is ours, in that spirit.
ABSTRACT_SYSTEM = (
    "You generalise instruction strategies. A high-level instructional strategy is a general "
    "principle for posing the next instruction to an AI assistant thoughtfully, purposefully and "
    "strategically: to get the information one wants, to move the dialogue on, to provoke deeper "
    "thinking or to draw the assistant out. It is reusable in any conversation, free of any topic, "
    "name or detail, and it says how to pose the next instruction (for example 'Ask for specific "
    "information to clarify details', 'Explore and define boundaries, constraints and contexts'). "
    "Each strategy you are given is a specialisation of one such principle. Write the one "
    "high-level strategy (a short phrase, at most 15 words) that they all specialise. Answer in "
    "JSON with the key strategy."
)
MAX_CONTEXT_CHARS = 1200  # MiniLM reads ~256 tokens; longer contexts only cost space


class InduceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dialogues: Annotated[list[str], INPUT_FILE] = Field(min_length=1, description="real dialogue files (any format)")
    format: str = "auto"
    on_error: Literal["fail", "skip"] = "fail"
    max_dialogues: int | None = Field(None, ge=1)
    filter: FilterConfig = FilterConfig()
    include_first_turn: bool = False
    model: BackendConfig
    embedder: str = DEFAULT_EMBEDDER
    threshold: float = Field(0.5, gt=0, le=1)
    method: Literal["butina", "components", "leader"] = "butina"
    knn: int = Field(64, ge=2, description="neighbours searched per strategy (bounds memory: n x knn)")
    abstract_sample: int = Field(20, ge=1, description="members shown to the LLM per cluster")
    singletons: Literal["keep", "merge"] = "keep"
    examples_per_strategy: int = Field(5, ge=1)
    contexts_per_strategy: int = Field(
        32, ge=0, description="answers kept per strategy for the provenance ranker (those that preceded its turns)"
    )
    seed: int = 0
    concurrency: Annotated[int, OPERATIONAL] = Field(64, ge=1, description="LLM requests in flight at once")


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
    out = Path(out)
    resolve_embedder(cfg.embedder)  # a bad embedder path fails now, not after extraction
    # -- read + filter -------------------------------------------------------------------
    convs = []
    skipped = 0
    for path in cfg.dialogues:
        rep = ReadReport(path=path)
        convs.extend(read_conversations(path, cfg.format, on_error=cfg.on_error, report=rep))
        skipped += len(rep.skipped)
    if cfg.max_dialogues:
        convs = convs[: cfg.max_dialogues]
    kept, dropped = filter_dialogues(convs, cfg.filter)
    all_units = [u for c in kept for u in extraction_units(c, cfg.include_first_turn)]
    units = distinct_units(all_units)
    if not units:
        raise DialforgeError(
            f"{', '.join(cfg.dialogues)}: no user turns to extract ({len(convs)} dialogues read, "
            f"{len(kept)} kept after filtering; only follow-up turns are extracted unless "
            "include_first_turn is set)"
        )

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
        pool, close_pool = borrow_pool(pool)
        llm = LLM(
            pool.get(cfg.model),
            cache=run.cache,
            usage=run.usage,
            params=cfg.model.params_or(SamplingParams(temperature=0.0, max_tokens=160)),
        )
        try:
            records = await _extract(cfg, run, llm.for_stage("extract"), units, progress)
            lib = await _cluster_and_abstract(
                cfg,
                run,
                llm.for_stage("abstract"),
                records,
                progress,
                counts={
                    "dialogues_read": len(convs),
                    "dialogues_kept": len(kept),
                    "dropped": dict(dropped),
                    "turns": len(all_units),
                    "distinct_turns": len(units),
                },
            )
        finally:
            await close_pool()
        return lib


async def _extract(
    cfg: InduceConfig, run: RunDir, llm: LLM, units: list[dict[str, Any]], progress: bool | None
) -> list[dict[str, Any]]:
    store = run.store("extracted.jsonl")
    failures = run.store("extract_failures.jsonl")
    todo = [u for u in units if u["id"] not in store]
    sem = asyncio.Semaphore(cfg.concurrency)
    run.usage.start_stage("extract")
    with stage_progress("extract", len(todo), run.usage, progress) as bar:

        async def one(u: dict[str, Any]) -> None:
            async with sem:
                res = await llm.structured(extraction_messages(u), ExtractedStrategy)
            strategy = clean_strategy(res.value.strategy) if res.value else ""
            if res.value and strategy:
                # IDEAS training shape: history + the user turn annotated with its strategy
                store.append({**u, "strategy": strategy, "analysis": res.value.analysis.strip()})
            else:
                failures.append(
                    {
                        "id": stable_hash(u["id"], res.raw),
                        "unit_id": u["id"],
                        "error": res.error or "empty strategy",
                        "raw": res.raw,
                    }
                )
            bar.advance()

        await asyncio.gather(*(one(u) for u in todo))
    run.usage.end_stage("extract")
    wanted = {u["id"] for u in units}
    records = [r for r in store.records() if r["id"] in wanted]
    n_fail = len(wanted) - len(records)
    run.stage_done("extract", turns=len(units), extracted=len(records), failed=n_fail)
    if not records:
        raise DialforgeError(
            f"extraction produced no strategies ({n_fail} failures; see {run.path / 'extract_failures.jsonl'})"
        )
    return records


async def _cluster_and_abstract(
    cfg: InduceConfig,
    run: RunDir,
    llm: LLM,
    records: list[dict[str, Any]],
    progress: bool | None,
    counts: dict[str, Any],
) -> StrategyLibrary:
    # -- embed each distinct strategy once -----------------------------------------------
    freq = Counter(r["strategy"] for r in records)  # distinct turns, not source threads
    originals = sorted(freq)  # sorted: order-independent input to clustering
    embedder = Embedder(cfg.embedder, cache_dir=run.path)
    run.usage.start_stage("embed")
    emb = embedder.embed(originals, show_progress=bool(progress))
    run.usage.end_stage("embed")
    np.save(run.path / "embeddings.npy", emb)
    # -- cluster --------------------------------------------------------------------------
    run.usage.start_stage("cluster")
    labels = cluster(emb, cfg.threshold, cfg.method, k=cfg.knn)
    run.usage.end_stage("cluster")
    orig_id = {t: stable_hash("strategy", t, length=12) for t in originals}
    groups: dict[int, list[int]] = {}
    for i, lab in enumerate(labels):
        groups.setdefault(int(lab), []).append(i)
    if cfg.singletons == "merge":
        groups = _merge_singletons(groups, emb)
    # -- abstract -------------------------------------------------------------------------
    by_text: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_text.setdefault(r["strategy"], []).append(r)
    rng = random.Random(cfg.seed)
    clusters = sorted(groups.values(), key=lambda m: (-sum(freq[originals[i]] for i in m), originals[m[0]]))
    run.usage.start_stage("abstract")
    sem = asyncio.Semaphore(cfg.concurrency)
    with stage_progress("abstract", len(clusters), run.usage, progress) as bar:

        async def one(members: list[int]) -> tuple[Strategy, list[int]]:
            texts = sorted((originals[i] for i in members), key=lambda t: (-freq[t], t))
            sample = texts[: cfg.abstract_sample // 2]
            rest = texts[len(sample) :]
            sample += rng.sample(rest, min(len(rest), cfg.abstract_sample - len(sample)))
            # singletons too: a raw extracted phrase is not a high-level strategy
            listing = "\n".join(f"- {t}" for t in sample)
            async with sem:
                res = await llm.structured(
                    [
                        {"role": "system", "content": ABSTRACT_SYSTEM},
                        {"role": "user", "content": f"Strategies:\n{listing}"},
                    ],
                    HighLevelStrategy,
                )
            cleaned = clean_strategy(res.value.strategy) if res.value else ""
            if cleaned:
                text, abstracted = cleaned, True
            else:  # a failed abstraction falls back to the most frequent member
                log.warning("abstraction failed for a cluster of %d: %s", len(texts), res.error)
                text, abstracted = texts[0], False
            turns = [r for t in texts for r in by_text[t]]
            turns.sort(key=lambda r: (r["conversation_id"], r["turn_index"]))
            centroid = emb[members].mean(axis=0)
            centroid /= max(float(np.linalg.norm(centroid)), 1e-12)
            bar.advance()
            return Strategy(
                id="s-" + stable_hash("cluster", sorted(orig_id[t] for t in texts), length=10),
                text=text,
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
                abstracted=abstracted,
                contexts=_contexts(turns, cfg.contexts_per_strategy, cfg.seed),
            ), members

        done = await asyncio.gather(*(one(m) for m in clusters))
    run.usage.end_stage("abstract")
    done.sort(key=lambda sm: (-sm[0].size, sm[0].id))
    strategies = [s for s, _ in done]
    # -- assignments beside the library: re-abstraction needs no re-embedding --------------
    cluster_of = {orig_id[originals[i]]: s.id for s, m in done for i in m}
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
