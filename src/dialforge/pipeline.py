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
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .errors import ConfigError
from .io.reader import atomic_write_bytes, read_conversations, write_conversations
from .llm.config import BackendConfig
from .run.rundir import config_fingerprint
from .tiny import TINY, tiny_model_path

log = logging.getLogger("dialforge.run")


class InduceStage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dialogues: list[str] = Field(min_length=1)
    format: str = "auto"
    max_dialogues: int | None = None
    threshold: float = 0.5
    method: Literal["butina", "components", "leader"] = "butina"
    model: BackendConfig | None = None


class SimulatorSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    mode: str = Field(description="a simulator mode of `dialforge modes` offered by `run`")
    user: BackendConfig | None = None
    user_format: Literal["prompted", "trained"] = "prompted"
    personas: list[str] = Field(default_factory=list)
    strategy: dict[str, Any] = Field(default_factory=dict, description="StrategyConfig fields (library is filled in)")

    @field_validator("mode")
    @classmethod
    def _known_mode(cls, v: str) -> str:
        from .simulate.modes import get_mode

        get_mode(v, "run")
        return v


class SimulateStage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seeds: dict[str, Any]
    max_turns: int = 4
    samples_per_seed: int = 1
    assistant: BackendConfig | None = None
    simulators: list[SimulatorSpec] = Field(min_length=1)
    stop: dict[str, Any] = Field(default_factory=dict)


class DedupStage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    near: float | None = 0.8
    embedding: float | None = None


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
    induce: InduceStage | None = None
    library: str | None = Field(None, description="an existing strategy library instead of `induce`")
    simulate: SimulateStage
    score: dict[str, Any] = Field(default_factory=dict, description="ScoreConfig fields")
    filter: str | None = Field(None, description="expression over scores and meta")
    dedup: DedupStage | None = DedupStage()
    export: list[Literal["openai", "sharegpt", "hf", "llamafactory"]] = ["sharegpt"]
    train: TrainStage | None = None
    report: bool = True


def _resolve(b: BackendConfig) -> BackendConfig:
    if b.model == TINY and not b.base_url:
        return b.model_copy(update={"model": str(tiny_model_path())})
    return b


def uses_tiny(cfg: PipelineConfig) -> bool:
    backends = [
        cfg.model,
        cfg.simulate.assistant,
        *(s.user for s in cfg.simulate.simulators),
        cfg.induce.model if cfg.induce else None,
    ]
    return any(b is not None and b.model == TINY and not b.base_url for b in backends)


async def run_pipeline_async(cfg: PipelineConfig, out: str | Path, *, progress: bool | None = None) -> dict[str, Any]:
    from .induce import InduceConfig, induce_async
    from .score import ScoreConfig, dedup, export, filter_conversations, score, validate_filter
    from .score.select import load_scores
    from .simulate import SimulateConfig, simulate_async

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
    if cfg.induce is not None:
        ic = InduceConfig(
            dialogues=cfg.induce.dialogues,
            format=cfg.induce.format,
            max_dialogues=cfg.induce.max_dialogues,
            threshold=cfg.induce.threshold,
            method=cfg.induce.method,
            model=_resolve(cfg.induce.model or model),
        )
        lib = await induce_async(ic, out / "induce", progress=progress)
        library = str(out / "induce" / "library.json")
        done("induce", **lib.counts)
    sims: dict[str, Path] = {}
    for spec in cfg.simulate.simulators:
        strategy = None
        if spec.mode == "strategy":
            if library is None:
                raise ConfigError("a strategy simulator needs `induce:` or `library:` in the pipeline config")
            strategy = {"library": library, **spec.strategy}
        sc = SimulateConfig(
            mode=spec.mode,
            seeds=cfg.simulate.seeds,
            max_turns=cfg.simulate.max_turns,
            samples_per_seed=cfg.simulate.samples_per_seed,
            user=_resolve(spec.user or model),
            assistant=_resolve(cfg.simulate.assistant or model),
            user_format=spec.user_format,
            personas=spec.personas,
            strategy=strategy,
            stop=cfg.simulate.stop,
        )
        sdir = out / "simulate" / spec.name
        summary = await simulate_async(sc, sdir, progress=progress)
        sims[spec.name] = sdir
        done(f"simulate.{spec.name}", **summary)
    score_cfg = ScoreConfig(**{"library": library, **cfg.score})
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
    return asyncio.run(run_pipeline_async(cfg, out, **kw))
