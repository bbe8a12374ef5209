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
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from .config import INPUT_FILE, LIST_UNION_TAGS, OPERATIONAL
from .errors import DialforgeError, RunDirConflict
from .induce.pipeline import InduceConfig
from .io.reader import aside_path, atomic_write_bytes, read_conversations, write_conversations
from .llm.client import run_sync
from .llm.config import BackendConfig, backend_config
from .llm.pool import BackendPool, borrow_pool
from .realism.config import RealismConfig
from .run.health import kept_warning, run_warnings
from .run.kernel import ExecutorConfig, use_executor
from .run.lock import RunLock
from .run.redact import redact
from .run.rundir import config_fingerprint, move_run_aside
from .score.scoring import ScoreConfig
from .simulate.config import SeedConfig, SimulateConfig, StopConfig, StrategyConfig
from .train.trainer import TrainConfig

log = logging.getLogger("dialforge.run")


class StrategyStage(StrategyConfig):
    """StrategyConfig whose library defaults to the pipeline's (`library:` or `induce:`)."""

    library: Annotated[str | None, INPUT_FILE] = Field(  # type: ignore[assignment]
        None, description="default: the pipeline's `library`, or the one `induce` writes"
    )


class _Simulator(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="output folder simulate/<name>/")
    user: BackendConfig | None = Field(None, description="user simulator backend (default: the pipeline's model)")
    user_format: Literal["prompted", "trained"] = SimulateConfig.model_fields["user_format"].default
    user_system_prompt: str | None = None
    trained: bool = Field(
        False,
        description="the user is the simulator the `train_simulator` stage trains (in-process, prompted "
        "exactly as trained; `user.params` still apply)",
    )
    seeds: SeedConfig | None = Field(
        None, description="this simulator's own seeds (default: the stage's), e.g. `{free: 20}` for free mode"
    )

    @field_validator("name")
    @classmethod
    def _a_folder_name(cls, v: str) -> str:
        if v in (".", ".."):
            raise ValueError(f"{v!r} is no folder name (each simulator writes simulate/<name>/)")
        return v


class StrategySimulator(_Simulator):
    """IDEAS deduction: the user picks a strategy from the library for each turn."""

    mode: Literal["strategy"]
    strategy: StrategyStage = Field(default_factory=StrategyStage)


class PersonaSimulator(_Simulator):
    """A prompted user that plays one of the personas."""

    mode: Literal["persona"]
    personas: list[str] = Field(min_length=1, description="one is picked per conversation")


class SocraticSimulator(_Simulator):
    """A prompted user that asks probing follow-up questions."""

    mode: Literal["socratic"]


class OtherSimulator(_Simulator):
    """Any other registered simulator mode: SimulateConfig validates it (and its mode's own
    checks) when the pipeline is validated, before the first request."""

    mode: str = Field(description="a simulator mode of `dialforge modes` offered by `run`")
    personas: list[str] = Field(default_factory=list)
    strategy: StrategyStage | None = None

    @field_validator("mode")
    @classmethod
    def _known_mode(cls, v: str) -> str:
        from .simulate.modes import get_mode

        get_mode(v, "run")  # an unknown mode fails at load, naming the modes `run` offers
        return v


_TYPED_MODES = {"strategy": StrategySimulator, "persona": PersonaSimulator, "socratic": SocraticSimulator}


def _simulator_tag(value: Any) -> str:
    mode = value.get("mode") if isinstance(value, dict) else getattr(value, "mode", None)
    return mode if mode in _TYPED_MODES else "other"


SimulatorSpec = Annotated[
    Annotated[StrategySimulator, Tag("strategy")]
    | Annotated[PersonaSimulator, Tag("persona")]
    | Annotated[SocraticSimulator, Tag("socratic")]
    | Annotated[OtherSimulator, Tag("other")],
    Discriminator(_simulator_tag),
]
"""One simulator of a pipeline, tagged by `mode` (strategy, persona and socratic are typed)."""
LIST_UNION_TAGS.update((*_TYPED_MODES, "other"))


class SimulateStage(BaseModel):
    """What every simulator of a pipeline shares (the same seeds, so they compare)."""

    model_config = ConfigDict(extra="forbid")

    seeds: SeedConfig
    max_turns: int = Field(4, ge=1, description="user turns per conversation, seed included")
    samples_per_seed: int = Field(1, ge=1)
    assistant: BackendConfig | None = Field(None, description="assistant backend (default: the pipeline's model)")
    simulators: list[SimulatorSpec] = Field(min_length=1)
    stop: StopConfig = StopConfig()
    concurrency: Annotated[int, OPERATIONAL] = Field(64, ge=1, description="conversations alive at once")
    seed: int = 0

    @field_validator("simulators")
    @classmethod
    def _distinct_names(cls, v: list[Any]) -> list[Any]:
        first: dict[str, int] = {}
        for i, spec in enumerate(v):
            if spec.name in first:  # both would write simulate/<name>/: the first was dropped
                raise ValueError(
                    f"simulators {first[spec.name]} and {i} are both named {spec.name!r} (names must differ)"
                )
            first[spec.name] = i
        return v


class DedupStage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    near: float | None = Field(0.8, gt=0, le=1, description="MinHash Jaccard threshold (null: off)")
    embedding: float | None = Field(None, gt=0, le=1, description="cosine threshold for embedding dedup (null: off)")


class RealismStage(RealismConfig):
    """`realism:` the realism card of every simulator against real users (`dialforge realism`)."""

    real: Annotated[str | None, INPUT_FILE] = Field(
        None, description="real dialogues; default: a held-out split of induce.dialogues that induction does not see"
    )
    heldout: float = Field(0.1, gt=0, lt=1, description="share of the induction dialogues held out (by family)")

    def card_config(self, cache_dir: Path) -> RealismConfig:
        fields = self.model_dump(exclude={"real", "heldout"})
        return RealismConfig(**{**fields, "cache_dir": fields["cache_dir"] or str(cache_dir)})


class TrainStage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["chat", "simulator"] = "chat"
    model: str | None = Field(None, description="base model (default: the run's model)")
    max_steps: int = 20
    lora: bool = True
    max_length: int = 1024


class TrainSimulatorStage(TrainConfig):
    """`train_simulator:` role-masked SFT of a user simulator before simulate (`dialforge train
    simulator`); a simulator with `trained: true` then plays the user with it. Any TrainConfig
    field applies (preset, template, max_steps, ...)."""

    kind: Literal["simulator"] = "simulator"
    data: Annotated[list[str] | None, INPUT_FILE] = Field(  # type: ignore[assignment]
        None,
        description="real dialogues to train on; default: the induction dialogues, less what realism holds out",
    )
    model: str | None = Field(None, description="base model (default: the run's model)")  # type: ignore[assignment]
    out: str | None = Field(None, description="default: <run>/train_simulator")  # type: ignore[assignment]


class PipelineConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: BackendConfig = Field(description="default backend for every role; `dialforge-tiny` = offline demo model")
    induce: InduceConfig | None = Field(None, description="IDEAS induction (its model defaults to `model`)")
    library: Annotated[str | None, INPUT_FILE] = Field(
        None, description="an existing strategy library instead of `induce`"
    )
    train_simulator: TrainSimulatorStage | None = Field(
        None, description="train a user simulator first; simulators with `trained: true` use it"
    )
    simulate: SimulateStage
    score: ScoreConfig = Field(default_factory=ScoreConfig, description="metrics (library filled in)")
    filter: str | None = Field(
        None,
        description="expression over scores and meta, e.g. `user_turns >= 2`; conversations that ended on "
        "`error` or hold no assistant reply are always dropped (nothing to train on)",
    )
    dedup: DedupStage | None = DedupStage()
    export: list[Literal["openai", "trl", "sharegpt", "hf", "llamafactory"]] = ["sharegpt"]
    train: TrainStage | None = None
    realism: RealismStage | None = Field(
        default_factory=lambda: RealismStage(),
        description="a realism card per simulator (null: off); runs when real dialogues are at hand",
    )
    report: bool = True
    executor: Annotated[ExecutorConfig | None, OPERATIONAL] = Field(
        None, description="local (default) or ray: where every stage's LLM jobs run"
    )

    @model_validator(mode="before")
    @classmethod
    def _induce_model(cls, data: Any) -> Any:
        """`induce.model` defaults to the pipeline's model (InduceConfig itself needs one)."""
        if isinstance(data, dict) and isinstance(data.get("induce"), dict) and "model" in data:
            induce = data["induce"]
            if induce.get("model") is None:
                data = {**data, "induce": {**induce, "model": data["model"]}}
        return data

    @model_validator(mode="after")
    def _library_source(self) -> PipelineConfig:
        for i, spec in enumerate(self.simulate.simulators):
            if isinstance(spec, StrategySimulator) and not (spec.strategy.library or self.library or self.induce):
                raise ValueError(
                    f"simulate.simulators.{i} ({spec.name}): a strategy simulator needs `induce:`, "
                    "`library:` or `strategy.library`"
                )
            if spec.trained and self.train_simulator is None:
                raise ValueError(
                    f"simulate.simulators.{i} ({spec.name}): `trained: true` needs a `train_simulator:` stage"
                )
        ts = self.train_simulator
        if ts is not None and not ts.data and self.induce is None:
            raise ValueError("train_simulator: give `data:` (or `induce:`, whose dialogues it trains on by default)")
        return self


def simulate_configs(
    cfg: PipelineConfig, model: BackendConfig, library: str | None, trained: str | None = None
) -> dict[str, SimulateConfig]:
    """One `SimulateConfig` per simulator: the shared stage settings plus the simulator's own
    (model names stay names: an embedded model is resolved when its backend is built).
    `trained` is the folder `train_simulator` wrote, the user of every `trained: true` simulator."""
    stage = cfg.simulate
    out: dict[str, SimulateConfig] = {}
    for spec in stage.simulators:
        extra: dict[str, Any] = {}
        user = spec.user or model
        if spec.trained:
            path = trained or "<train_simulator>/final"
            user = (
                user.model_copy(update={"model": path})
                if user.kind == "transformers"
                else backend_config(model=path, params=user.params)  # a local folder: in-process
            )
        strategy = getattr(spec, "strategy", None)
        if strategy is not None:
            lib = strategy.library or library
            extra["strategy"] = StrategyConfig.model_validate({**strategy.model_dump(), "library": lib})
        if getattr(spec, "personas", None):
            extra["personas"] = spec.personas  # type: ignore[union-attr]
        out[spec.name] = SimulateConfig(
            mode=spec.mode,
            seeds=spec.seeds or stage.seeds,
            max_turns=stage.max_turns,
            samples_per_seed=stage.samples_per_seed,
            user=user,
            assistant=stage.assistant or model,
            user_format="trained" if spec.trained else spec.user_format,
            user_system_prompt=spec.user_system_prompt,
            stop=stage.stop,
            concurrency=stage.concurrency,
            seed=stage.seed,
            **extra,
        )
    return out


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
    from .score import validate_filter
    from .validate import validate_pipeline

    validate_pipeline(cfg, source)
    if cfg.filter:
        validate_filter(cfg.filter)  # a typo fails now, not after every simulation
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
            from .report import write_report

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
    from .induce import induce_async
    from .simulate import simulate_async

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
            run.done(f"simulate.{name}", warnings=warnings, **summary)
    finally:
        await close_pool()
    return sims, real


async def _train_simulator(cfg: PipelineConfig, run: PipelineRun, seen: list[str]) -> str:
    """Train the user simulator on `train_simulator.data`, by default on the induction
    dialogues realism did not hold out (so the realism card compares it with real users it
    never saw); resumes like `dialforge train` (a finished run with this config is kept)."""
    from .train import train

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
    from .realism.split import split_heldout

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
    from .score import dedup_file, filter_file, score
    from .score.export import export_conversations, export_file_result

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
        target = run.out / "export" / (name if fmt in ("hf", "llamafactory") else f"{name}.{fmt}.jsonl")
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
    from .realism.stage import FLOOR_JSON, realism_floor, realism_stage, write_card

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
        summary["real"] = str(real)
        summary["floor_discriminator_auc"] = floor.discriminator.auc
        summary["floor_overall_realism"] = floor.overall.score
        # the card's caveats (small samples) are not health warnings: they stay with the card
        summary["caveats"] = summary.pop("warnings", [])
        run.done(f"realism.{name}", **summary)


async def _train(cfg: PipelineConfig, run: PipelineRun, sims: dict[str, Path]) -> None:
    from .train import TrainConfig, train

    assert cfg.train is not None
    base = cfg.train.model or cfg.model.model
    for name, sdir in sims.items():
        tsum = await asyncio.to_thread(
            train,
            TrainConfig(
                kind=cfg.train.kind,
                data=[str(sdir / "final.jsonl")],
                model=base,
                out=str(run.out / "train" / name),
                max_steps=cfg.train.max_steps,
                lora=cfg.train.lora,
                max_length=cfg.train.max_length,
            ),
        )
        run.done(f"train.{name}", **{k: tsum[k] for k in ("examples", "steps", "train_loss", "final")})


def run_pipeline(cfg: PipelineConfig, out: str | Path, **kw: Any) -> dict[str, Any]:
    return run_sync(run_pipeline_async(cfg, out, **kw))
