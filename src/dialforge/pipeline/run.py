"""`dialforge run CONFIG`: induce (or load a library) -> optional train_simulator -> simulate
(several simulators side by side on the same seeds) -> score -> filter -> dedup -> export ->
realism -> optional train -> report.

Every stage with model calls is its own resumable run directory under the pipeline's
(`induce/`, `simulate/<name>/`, `train/<name>/`); the cheap file stages are recomputed from
their inputs. Kill it anywhere and start it again: nothing is lost, no call is made twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

import orjson

from ..errors import DialforgeError, RunDirConflict
from ..induce.config import InduceConfig
from ..io.files import aside_path, atomic_write_bytes
from ..io.output import write_conversations
from ..io.reader import read_conversations
from ..io.registry import exporter
from ..llm.client import run_sync
from ..llm.pool import BackendPool, borrow_pool
from ..llm.redact import redact
from ..run.health import kept_warning, run_warnings
from ..run.kernel import use_executor
from ..run.lock import RunLock
from ..run.rundir import config_fingerprint, move_run_aside
from ..train.config import TrainConfig
from .config import PipelineConfig, simulate_configs
from .validate import validate_pipeline

log = logging.getLogger("dialforge.run")


class PipelineRun:
    """The pipeline's own state file (`pipeline.json`): stage summaries in order, health
    warnings, the config and its fingerprint. Written atomically after every stage."""

    def __init__(self, out: Path, cfg: PipelineConfig) -> None:
        self.out = out
        self.path = out / "pipeline.json"
        self.state: dict[str, Any] = {
            "config_fingerprint": config_fingerprint(cfg),
            "config": redact(cfg.model_dump(mode="json")),
            "stages": {},
            "warnings": [],
        }

    def done(self, stage: str, warnings: list[str] | None = None, **info: Any) -> None:
        self.state["stages"][stage] = {**info, "warnings": warnings} if warnings else info
        if warnings:
            self.state["warnings"] += warnings
        atomic_write_bytes(self.path, orjson.dumps(self.state, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))

    def rel(self, path: Path) -> str:
        return str(path.relative_to(self.out))


def _open_run_dir(out: Path, fingerprint: str, force_new: bool) -> RunLock:
    """Lock `out` for this process; a run of another config is refused, or with `force_new`
    moved aside to `OUT.old-TIMESTAMP` (nothing is deleted). A damaged pipeline.json is moved
    aside too: the stages' own run directories still resume."""
    lock = RunLock(out).acquire()
    manifest = out / "pipeline.json"
    if not manifest.exists():
        return lock
    try:
        old = orjson.loads(manifest.read_bytes()).get("config_fingerprint")
    except (orjson.JSONDecodeError, AttributeError):
        aside = aside_path(manifest, "corrupt")
        manifest.rename(aside)
        log.warning("%s was damaged; moved it to %s", manifest, aside.name)
        return lock
    if old == fingerprint:
        return lock
    if not force_new:
        lock.release()
        raise RunDirConflict(
            f"{out} holds a pipeline run with a different config; use another --out directory, "
            "or --force-new to move the old run aside"
        )
    return move_run_aside(out, lock)


async def run_pipeline_async(
    cfg: PipelineConfig,
    out: str | Path,
    *,
    force_new: bool = False,
    progress: bool | None = None,
    pool: BackendPool | None = None,
    source: str = "pipeline config",
) -> dict[str, Any]:
    """The whole job. Every check that needs no model runs first (`validate_pipeline`); one
    backend pool serves every stage, so an in-process model loads once per run. Returns the
    pipeline state (what `pipeline.json` holds), `warnings` included."""
    validate_pipeline(cfg, source)  # the filter's names included: a typo fails now, not after every simulation
    out = Path(out)
    lock = _open_run_dir(out, config_fingerprint(cfg), force_new)
    try:
        run = PipelineRun(out, cfg)
        run.done("start")
        with use_executor(cfg.executor) if cfg.executor else contextlib.nullcontext():
            sims, real = await _generate(cfg, run, progress, pool)
        for name, sdir in sims.items():
            await asyncio.to_thread(_select, cfg, run, name, sdir)
        if cfg.realism is not None and sims:
            await asyncio.to_thread(_realism, cfg, run, sims, real)
        if cfg.train is not None:
            await _train(cfg, run, sims)
        if cfg.report:
            from ..report import write_report

            path = write_report([out], out / "report.html")
            run.done("report", path=run.rel(path))
        run.done("finished")
        return run.state
    finally:
        lock.release()


async def _generate(
    cfg: PipelineConfig, run: PipelineRun, progress: bool | None, pool: BackendPool | None
) -> tuple[dict[str, Path], Path | None]:
    """induce (on the part of the real dialogues realism does not hold out) and every
    simulator; the simulators' run directories and the real reference for realism."""
    from ..induce import induce_async
    from ..simulate import simulate_async

    model = cfg.model
    library = cfg.library
    real = Path(cfg.realism.real) if cfg.realism is not None and cfg.realism.real else None
    pool, close_pool = borrow_pool(pool)
    try:
        seen: list[str] = []
        if cfg.induce is not None:
            ic = cfg.induce
            if cfg.realism is not None and real is None:
                ic, real = _hold_out(cfg, ic, run)
            seen = list(ic.dialogues)
            lib = await induce_async(ic, run.out / "induce", progress=progress, pool=pool)
            library = str(run.out / "induce" / "library.json")
            run.done("induce", warnings=run_warnings(run.out / "induce"), **lib.counts)
        trained = await _train_simulator(cfg, run, seen) if cfg.train_simulator is not None else None
        sims: dict[str, Path] = {}
        for name, sc in simulate_configs(cfg, model, library, trained).items():
            sdir = run.out / "simulate" / name
            summary = await simulate_async(sc, sdir, progress=progress, pool=pool)
            sims[name] = sdir
            warnings = [f"{name}: {w}" for w in summary.pop("warnings", [])]
            if summary.get("output"):  # pipeline.json names files inside the run, never local paths
                summary["output"] = run.rel(Path(summary["output"]))
            run.done(f"simulate.{name}", warnings=warnings, **summary)
    finally:
        await close_pool()
    return sims, real


async def _train_simulator(cfg: PipelineConfig, run: PipelineRun, seen: list[str]) -> str:
    """Train the user simulator on `train_simulator.data`, by default on the induction
    dialogues realism did not hold out (so the realism card compares it with real users it
    never saw); resumes like `dialforge train` (a finished run with this config is kept)."""
    from ..train import train

    ts = cfg.train_simulator
    assert ts is not None
    fields = ts.model_dump(exclude={"data", "model", "out"})
    tc = TrainConfig(
        **fields,
        data=ts.data or seen,
        model=ts.model or cfg.model.model,
        out=ts.out or str(run.out / "train_simulator"),
    )
    tsum = await asyncio.to_thread(train, tc)
    keys = ("examples", "skipped_too_long", "truncated", "trained_tokens", "steps", "train_loss", "wall_s", "final")
    run.done("train_simulator", data=tc.data, **{k: tsum.get(k) for k in keys})
    return str(tsum["final"])


def _hold_out(cfg: PipelineConfig, ic: InduceConfig, run: PipelineRun) -> tuple[InduceConfig, Path]:
    """Split the induction dialogues by family: induction sees one part, realism compares the
    simulators with the other (real users they never learnt from)."""
    from ..realism.split import split_heldout

    assert cfg.realism is not None and cfg.induce is not None
    convs: list[Any] = []
    for path in ic.dialogues:
        convs.extend(read_conversations(path, ic.format, on_error=ic.on_error))
    seen, held = split_heldout(convs, cfg.realism.heldout, cfg.realism.seed)
    folder = run.out / "realism"
    write_conversations(seen, folder / "induce_dialogues.jsonl")
    write_conversations(held, folder / "real_heldout.jsonl")
    run.done("holdout", induce=len(seen), held_out=len(held), path=run.rel(folder / "real_heldout.jsonl"))
    ic = ic.model_copy(update={"dialogues": [str(folder / "induce_dialogues.jsonl")], "format": "openai"})
    return ic, folder / "real_heldout.jsonl"


def _select(cfg: PipelineConfig, run: PipelineRun, name: str, sdir: Path) -> None:
    """score -> filter -> dedup -> export, each streaming from file to file; the funnel
    (generated, failed, kept by the filter, after dedup, exported) goes in pipeline.json."""
    from ..score import dedup_file, filter_file, score
    from ..score.export import export_conversations, export_file_result

    score_cfg = cfg.score.model_copy(update={"library": cfg.score.library or _library(cfg, run)})
    scores = score(sdir, score_cfg)
    # an errored conversation, one with no assistant reply of its own (a role flip at the first
    # turn) or one without a single simulated user turn (the seed alone: real people's words)
    # is no simulated training example whatever the filter says
    expr = 'termination_reason != "error" and new_assistant_turns > 0 and user_turns > 0'
    expr += f" and ({cfg.filter})" if cfg.filter else ""
    kept, generated = filter_file(sdir / "conversations.jsonl", expr, sdir / "filtered.jsonl", sdir / "scores.jsonl")
    final, removed = sdir / "final.jsonl", sdir / "dedup_removed.jsonl"
    if cfg.dedup is not None and kept:
        deduped, _, _ = dedup_file(
            sdir / "filtered.jsonl",
            final,
            removed,
            near=cfg.dedup.near,
            embedding=cfg.dedup.embedding,
            cache_dir=run.out / "cache",
        )
    else:  # nothing to dedup (an empty file is not an input the readers accept)
        deduped = kept
        atomic_write_bytes(final, (sdir / "filtered.jsonl").read_bytes())
        atomic_write_bytes(removed, b"")
    exports, left_out = {}, {}
    for fmt in cfg.export:  # each written file is checked by its consumer's rules
        target = run.out / "export" / (name if exporter(fmt).folder else f"{name}.{fmt}.jsonl")
        r = export_file_result(final, fmt, target, name) if deduped else export_conversations([], fmt, target, name)
        exports[fmt] = run.rel(r.paths[0])
        if r.skipped:  # what the consumer would refuse (e.g. no assistant reply left for LLaMA-Factory)
            left_out[fmt] = dict(r.skipped)
    failed = run.state["stages"][f"simulate.{name}"]["termination_reasons"].get("error", 0)
    warnings = kept_warning(f"{name} filter", generated - failed, kept) + kept_warning(f"{name} dedup", kept, deduped)
    run.done(
        f"select.{name}",
        warnings=warnings,
        conversations=generated,
        failed=failed,
        kept_after_filter=kept,
        kept_after_dedup=deduped,
        dedup_removed=kept - deduped,
        final=run.rel(final),
        exports=exports,
        **({"export_left_out": left_out} if left_out else {}),
        scores=scores,
    )


def _library(cfg: PipelineConfig, run: PipelineRun) -> str | None:
    if cfg.library:
        return cfg.library
    lib = run.out / "induce" / "library.json"
    return str(lib) if cfg.induce is not None and lib.exists() else None


def _realism(cfg: PipelineConfig, run: PipelineRun, sims: dict[str, Path], real: Path | None) -> None:
    """A realism card per simulator (everything it generated, before the filter: the card
    rates the simulator, not the selection) against the real reference, and one real-vs-real
    floor, each written into the simulator's run directory for the report."""
    from ..realism.stage import FLOOR_JSON, realism_floor, realism_stage, write_card

    assert cfg.realism is not None
    if real is None:
        run.done("realism", skipped="no real dialogues at hand (set realism.real, or use induce:)")
        return
    rcfg = cfg.realism.card_config(run.out / "cache")
    try:
        floor = realism_floor(real, rcfg)
    except DialforgeError as e:
        run.done("realism", warnings=[f"realism: {e}"], skipped=str(e))
        return
    for name, sdir in sims.items():
        try:
            summary = realism_stage(sdir / "conversations.jsonl", real, sdir, config=rcfg, floor=False)
        except DialforgeError as e:  # e.g. nothing kept: say so, keep going
            run.done(f"realism.{name}", warnings=[f"realism {name}: {e}"], skipped=str(e))
            continue
        summary["floor"] = run.rel(write_card(floor, sdir, FLOOR_JSON))
        summary["card"] = run.rel(Path(summary["card"]))
        summary["real"] = run.rel(real) if real.is_relative_to(run.out) else str(real)
        summary["floor_discriminator_auc"] = floor.discriminator.auc
        summary["floor_overall_realism"] = floor.overall.score
        # the card's caveats (small samples) are not health warnings: they stay with the card
        summary["caveats"] = summary.pop("warnings", [])
        run.done(f"realism.{name}", **summary)


async def _train(cfg: PipelineConfig, run: PipelineRun, sims: dict[str, Path]) -> None:
    from ..train import train

    assert cfg.train is not None
    for name, sdir in sims.items():
        tc = cfg.train.for_simulator(str(sdir / "final.jsonl"), cfg.model.model, str(run.out / "train" / name))
        tsum = await asyncio.to_thread(train, tc)
        run.done(f"train.{name}", **{k: tsum[k] for k in ("examples", "steps", "train_loss", "final")})


def run_pipeline(cfg: PipelineConfig, out: str | Path, **kw: Any) -> dict[str, Any]:
    return run_sync(run_pipeline_async(cfg, out, **kw))
