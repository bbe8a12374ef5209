"""The pipeline's config (`dialforge run CONFIG`): data only. It composes the commands'
configs (induce, simulate, score, realism, train) instead of copying their fields; its
validation before any model call is `pipeline/validate.py`, its run `pipeline/run.py`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from ..config import LIST_UNION_TAGS
from ..induce.config import InduceConfig
from ..llm.config import BackendConfig, backend_config
from ..markers import INPUT_FILE, OPERATIONAL
from ..realism.config import RealismConfig
from ..run.config import ExecutorConfig
from ..score.config import ScoreConfig
from ..simulate.config import SeedConfig, SimulateConfig, StopConfig, StrategyConfig
from ..train.config import TrainConfig


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
        from ..simulate.modes import get_mode

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
