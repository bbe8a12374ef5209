"""The pipeline's config (`dialforge run CONFIG`): data only. It composes the commands'
configs (induce, simulate, score, realism, train) instead of copying their fields; its
validation before any model call is `pipeline/validate.py`, its run `pipeline/run.py`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    create_model,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic.fields import FieldInfo

from ..induce.config import InduceConfig
from ..llm.config import BackendConfig, backend_config
from ..markers import INPUT_FILE, OPERATIONAL, FieldMarker
from ..realism.config import RealismConfig
from ..run.config import ExecutorConfig
from ..score.config import ScoreConfig
from ..simulate.config import SeedConfig, SimulateConfig, StopConfig, StrategyConfig
from ..train.config import TrainConfig


def _export_format(name: str) -> str:
    from ..io.registry import check_export_format  # the format registry, read when a config is validated

    return check_export_format(name)


#: an export format of the registry (`io/registry.py`), checked as the config is validated
ExportFormat = Annotated[str, AfterValidator(_export_format)]


class StrategyStage(StrategyConfig):
    """StrategyConfig whose library defaults to the pipeline's (`library:` or `induce:`)."""

    library: Annotated[str | None, INPUT_FILE] = Field(  # type: ignore[assignment]
        None, description="default: the pipeline's `library`, or the one `induce` writes"
    )


class _SimulatorEntry(BaseModel):
    """What only a pipeline simulator has. Its other fields are `SimulateConfig`'s, each
    optional (`SimulatorSpec`): given, it replaces the shared stage's value for this simulator."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="output folder simulate/<name>/")
    mode: str = Field(description="a simulator mode of `dialforge modes` offered by `run`")
    trained: bool = Field(
        False,
        description="the user is the simulator the `train_simulator` stage trains (in-process, prompted "
        "exactly as trained; `user.params` still apply)",
    )
    strategy: StrategyStage | None = Field(
        None, description="strategy mode: IDEAS deduction (its library defaults to the pipeline's)"
    )

    @field_validator("name")
    @classmethod
    def _a_folder_name(cls, v: str) -> str:
        if v in (".", ".."):
            raise ValueError(f"{v!r} is no folder name (each simulator writes simulate/<name>/)")
        return v

    @field_validator("mode")
    @classmethod
    def _known_mode(cls, v: str) -> str:
        from ..simulate.modes import get_mode

        get_mode(v, "run")  # an unknown mode fails at load, naming the modes `run` offers
        return v

    @model_serializer(mode="wrap")
    def _given(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> dict[str, Any]:
        """Its own fields and the SimulateConfig fields it sets, not every other one as null;
        in the shape an entry had before it was a partial (`_BEFORE`), so the config
        fingerprint of a pipeline run started then is the same and the run resumes."""
        data = handler(self)
        keys = _BEFORE.get(self.mode, _BEFORE[None])
        out = {k: v for k, v in data.items() if k in keys or k in self.model_fields_set}
        for k, default in _DEFAULTS.items():
            if k in keys and k not in self.model_fields_set:
                out[k] = default() if k != "strategy" else default().model_dump(mode=info.mode)
        return out

    def given(self) -> dict[str, Any]:
        """The SimulateConfig fields this simulator sets (null: not set)."""
        keep = self.model_fields_set - {"name", "trained"}
        return {k: v for k in sorted(keep) if (v := getattr(self, k)) is not None}


# The keys a simulator entry serialized to when each mode had its own class (the shape the
# config fingerprint of an older pipeline run was made from), by mode (None: any other mode).
_COMMON = {"name", "mode", "trained", "user", "user_format", "user_system_prompt", "seeds"}
_BEFORE: dict[str | None, set[str]] = {
    "strategy": _COMMON | {"strategy"},
    "persona": _COMMON | {"personas"},
    "socratic": _COMMON,
    None: _COMMON | {"personas", "strategy"},
}
# the values those keys had when not given (a strategy simulator's strategy: the defaults)
_DEFAULTS: dict[str, Any] = {"user_format": lambda: "prompted", "personas": list, "strategy": lambda: StrategyStage()}

# SimulateConfig fields a pipeline simulator does not set: the pipeline's `executor` runs every stage
_PIPELINE_OWNS = frozenset({"executor"})


def _optional(info: FieldInfo) -> tuple[Any, Any]:
    """A SimulateConfig field as an optional one (None: the shared stage's value or the
    default), its checks and description kept, its markers (OPERATIONAL, INPUT_FILE) outside."""
    marks = [m for m in info.metadata if isinstance(m, FieldMarker)]
    checks = [m for m in info.metadata if not isinstance(m, FieldMarker)]
    inner: Any = Annotated[(info.annotation, *checks)] if checks else info.annotation
    outer = Annotated[(inner | None, *marks)] if marks else inner | None
    return outer, Field(None, description=info.description)


if TYPE_CHECKING:
    SimulatorSpec = _SimulatorEntry
else:
    SimulatorSpec = create_model(
        "SimulatorSpec",
        __base__=_SimulatorEntry,
        __doc__="One simulator of a pipeline: a name, and a SimulateConfig partial merged over the shared stage.",
        **{
            name: _optional(info)
            for name, info in SimulateConfig.model_fields.items()
            if name not in _SimulatorEntry.model_fields and name not in _PIPELINE_OWNS
        },
    )


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


class TrainStage(TrainConfig):
    """`train:` SFT of a model on each simulator's selected conversations (`dialforge train`).
    Any TrainConfig field applies (preset, template, learning_rate, ...); the pipeline sets
    `data` and `out` per simulator, and its defaults are a short run."""

    kind: Literal["chat", "simulator"] = "chat"
    data: None = Field(None, description="set by the pipeline: each simulator's final.jsonl")  # type: ignore[assignment]
    model: str | None = Field(None, description="base model (default: the run's model)")  # type: ignore[assignment]
    out: None = Field(None, description="set by the pipeline: <run>/train/<simulator>")  # type: ignore[assignment]
    max_steps: int = 20
    max_length: int = Field(1024, ge=16)

    @field_validator("data", "out", mode="before")
    @classmethod
    def _set_by_the_pipeline(cls, v: Any) -> None:
        if v is not None:
            raise ValueError("set by the pipeline (each simulator's final.jsonl into <run>/train/<simulator>)")
        return v

    @model_serializer(mode="wrap")
    def _given(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """The fields it had before it was a TrainConfig (the shape an older pipeline run's
        config fingerprint was made from) and those given."""
        keep = {"kind", "model", "max_steps", "lora", "max_length"} | self.model_fields_set
        return {k: v for k, v in handler(self).items() if k in keep}

    def for_simulator(self, data: str, model: str, out: str) -> TrainConfig:
        """The TrainConfig that trains on one simulator's `data` into `out`."""
        fields = {k: getattr(self, k) for k in TrainConfig.model_fields if k not in ("data", "model", "out")}
        return TrainConfig(**fields, data=[data], model=self.model or model, out=out)


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
    export: list[ExportFormat] = ["sharegpt"]
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
            own_library = spec.strategy is not None and spec.strategy.library
            if spec.mode == "strategy" and not (own_library or self.library or self.induce):
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
    """One `SimulateConfig` per simulator: the shared stage settings, then what the simulator
    sets itself (model names stay names: an embedded model is resolved when its backend is
    built). `trained` is the folder `train_simulator` wrote, the user of every `trained: true`
    simulator."""
    stage = cfg.simulate
    shared = {k: v for k in SimulateStage.model_fields if k != "simulators" and (v := getattr(stage, k)) is not None}
    out: dict[str, SimulateConfig] = {}
    for spec in stage.simulators:
        fields: dict[str, Any] = {"user": model, "assistant": model, **shared, **spec.given()}
        if spec.trained:
            fields["user"] = _trained_user(fields["user"], trained or "<train_simulator>/final")
            fields["user_format"] = "trained"
        strategy = spec.strategy or (StrategyStage() if spec.mode == "strategy" else None)
        if strategy is not None:
            lib = strategy.library or library
            fields["strategy"] = StrategyConfig.model_validate({**strategy.model_dump(), "library": lib})
        out[spec.name] = SimulateConfig(**fields)
    return out


def _trained_user(user: BackendConfig, path: str) -> BackendConfig:
    """The user role played by the trained simulator in `path`, with the role's sampling."""
    if user.kind == "transformers":
        return user.model_copy(update={"model": path})
    return backend_config(model=path, params=user.params)  # a local folder: in-process
