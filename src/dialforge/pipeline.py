"""`dialforge run CONFIG`: induce (or load a library) -> simulate (several simulators side by
side on the same seeds) -> score -> filter -> dedup -> export -> optional train -> report.

Every stage with model calls is its own resumable run directory under the pipeline's
(`induce/`, `simulate/<name>/`, `train/<name>/`); the cheap file stages are recomputed from
their inputs. Kill it anywhere and start it again: nothing is lost, no call is made twice.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from .config import INPUT_FILE, LIST_UNION_TAGS, OPERATIONAL
from .errors import ConfigError
from .induce.pipeline import InduceConfig
from .io.reader import atomic_write_bytes, read_conversations, write_conversations
from .llm.client import run_sync
from .llm.config import BackendConfig, BackendPool, TransformersBackendConfig, borrow_pool
from .run.rundir import config_fingerprint
from .score.scoring import ScoreConfig
from .simulate.config import SeedConfig, SimulateConfig, StopConfig, StrategyConfig
from .tiny import TINY, tiny_model_path

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


class DedupStage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    near: float | None = Field(0.8, description="MinHash Jaccard threshold (null: off)")
    embedding: float | None = Field(None, description="cosine threshold for embedding dedup (null: off)")


class TrainStage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["chat", "simulator"] = "chat"
    model: str | None = Field(None, description="base model (default: the run's model)")
    max_steps: int = 20
    lora: bool = True
    max_length: int = 1024


class PipelineConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: BackendConfig = Field(description="default backend for every role; `dialforge-tiny` = offline demo model")
    induce: InduceConfig | None = Field(None, description="IDEAS induction (its model defaults to `model`)")
    library: Annotated[str | None, INPUT_FILE] = Field(
        None, description="an existing strategy library instead of `induce`"
    )
    simulate: SimulateStage
    score: ScoreConfig = Field(default_factory=ScoreConfig, description="metrics (library filled in)")
    filter: str | None = Field(None, description="expression over scores and meta, e.g. `user_turns >= 2`")
    dedup: DedupStage | None = DedupStage()
    export: list[Literal["openai", "sharegpt", "hf", "llamafactory"]] = ["sharegpt"]
    train: TrainStage | None = None
    report: bool = True

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
        return self


def _resolve(b: BackendConfig) -> BackendConfig:
    if b.model == TINY and isinstance(b, TransformersBackendConfig):
        return b.model_copy(update={"model": str(tiny_model_path())})
    return b


def uses_tiny(cfg: PipelineConfig) -> bool:
    backends = [
        cfg.model,
        cfg.simulate.assistant,
        *(s.user for s in cfg.simulate.simulators),
        cfg.induce.model if cfg.induce else None,
    ]
    return any(b is not None and b.model == TINY and isinstance(b, TransformersBackendConfig) for b in backends)


def simulate_configs(
    cfg: PipelineConfig, model: BackendConfig, library: str | None, *, resolve: bool = True
) -> dict[str, SimulateConfig]:
    """One `SimulateConfig` per simulator: the shared stage settings plus the simulator's own
    (`resolve=False` leaves `dialforge-tiny` unbuilt, for validation)."""
    res = _resolve if resolve else (lambda b: b)
    stage = cfg.simulate
    out: dict[str, SimulateConfig] = {}
    for spec in stage.simulators:
        extra: dict[str, Any] = {}
        strategy = getattr(spec, "strategy", None)
        if strategy is not None:
            lib = strategy.library or library
            extra["strategy"] = StrategyConfig.model_validate({**strategy.model_dump(), "library": lib})
        if getattr(spec, "personas", None):
            extra["personas"] = spec.personas  # type: ignore[union-attr]
        out[spec.name] = SimulateConfig(
            mode=spec.mode,
            seeds=stage.seeds,
            max_turns=stage.max_turns,
            samples_per_seed=stage.samples_per_seed,
            user=res(spec.user or model),
            assistant=res(stage.assistant or model),
            user_format=spec.user_format,
            user_system_prompt=spec.user_system_prompt,
            stop=stage.stop,
            concurrency=stage.concurrency,
            seed=stage.seed,
            **extra,
        )
    return out


async def run_pipeline_async(
    cfg: PipelineConfig,
    out: str | Path,
    *,
    progress: bool | None = None,
    pool: BackendPool | None = None,
    source: str = "pipeline config",
) -> dict[str, Any]:
    """The whole job. Every check that needs no model runs first (`validate_pipeline`); one
    backend pool serves every stage, so an in-process model loads once per run."""
    from .induce import induce_async
    from .score import dedup, export, filter_conversations, score, validate_filter
    from .score.select import load_scores
    from .simulate import simulate_async
    from .validate import validate_pipeline

    validate_pipeline(cfg, source)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "pipeline.json"
    fp = config_fingerprint(cfg)
    if manifest_path.exists():
        old = orjson.loads(manifest_path.read_bytes())
        if old.get("config_fingerprint") != fp:
            raise ConfigError(f"{out} holds a pipeline run with a different config; use another --out")
    state: dict[str, Any] = {"config_fingerprint": fp, "config": cfg.model_dump(mode="json"), "stages": {}}

    def done(stage: str, **info: Any) -> None:
        state["stages"][stage] = info
        atomic_write_bytes(manifest_path, orjson.dumps(state, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))

    if cfg.filter:
        validate_filter(cfg.filter)  # a typo fails now, not after every simulation
    done("start")
    model = _resolve(cfg.model)
    library = cfg.library
    pool, close_pool = borrow_pool(pool)
    try:
        if cfg.induce is not None:
            ic = cfg.induce.model_copy(update={"model": _resolve(cfg.induce.model)})
            lib = await induce_async(ic, out / "induce", progress=progress, pool=pool)
            library = str(out / "induce" / "library.json")
            done("induce", **lib.counts)
        sims: dict[str, Path] = {}
        for name, sc in simulate_configs(cfg, model, library).items():
            sdir = out / "simulate" / name
            summary = await simulate_async(sc, sdir, progress=progress, pool=pool)
            sims[name] = sdir
            done(f"simulate.{name}", **summary)
    finally:
        await close_pool()
    score_cfg = cfg.score.model_copy(update={"library": cfg.score.library or library})
    for name, sdir in sims.items():
        s = await asyncio.to_thread(score, sdir, score_cfg)
        convs = read_conversations(sdir / "conversations.jsonl", on_error="skip")
        kept = filter_conversations(convs, load_scores(sdir / "scores.jsonl"), cfg.filter) if cfg.filter else convs
        removed: list[dict[str, Any]] = []
        if cfg.dedup is not None:
            kept, removed = dedup(kept, near=cfg.dedup.near, embedding=cfg.dedup.embedding)
        write_conversations(kept, sdir / "final.jsonl")
        atomic_write_bytes(sdir / "dedup_removed.jsonl", b"".join(orjson.dumps(r) + b"\n" for r in removed))
        for fmt in cfg.export:
            target = out / "export" / (name if fmt in ("hf", "llamafactory") else f"{name}.{fmt}.jsonl")
            export(kept, fmt, target, name=name)
        done(
            f"select.{name}",
            conversations=len(convs),
            kept_after_filter_and_dedup=len(kept),
            dedup_removed=len(removed),
            scores=s,
        )
    if cfg.train is not None:
        from .train import TrainConfig, train

        base = cfg.train.model or model.model
        for name, sdir in sims.items():
            tsum = await asyncio.to_thread(
                train,
                TrainConfig(
                    kind=cfg.train.kind,
                    data=[str(sdir / "final.jsonl")],
                    model=base,
                    out=str(out / "train" / name),
                    max_steps=cfg.train.max_steps,
                    lora=cfg.train.lora,
                    max_length=cfg.train.max_length,
                ),
            )
            done(f"train.{name}", **{k: tsum[k] for k in ("examples", "steps", "train_loss", "final")})
    if cfg.report:
        from .report import write_report

        path = write_report([out], out / "report.html")
        done("report", path=str(path))
    done("finished")
    return state


def run_pipeline(cfg: PipelineConfig, out: str | Path, **kw: Any) -> dict[str, Any]:
    return run_sync(run_pipeline_async(cfg, out, **kw))
