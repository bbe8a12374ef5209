"""Configuration of `dialforge train`: one class for CLI, YAML and Python (data only: no
torch, no reader; `train/trainer.py` runs it)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..markers import INPUT_FILE

# The published recipes. A preset fills the fields the config leaves unset; a value given
# explicitly (YAML, flag, --set, Python) always wins. "default" is dialforge's own: LoRA r16
# at 2e-4, linear decay, no warmup, batch 4 (fits a laptop GPU; see docs/methods.md).
PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    # PlatoLM (Kong et al., ICLR 2024; their train script): full fine-tune, 3 epochs, lr 2e-5,
    # cosine, 3% warmup, weight decay 0, 128 sequences per step (4 x 8 x 4 GPUs there; here
    # 4 per device x 32 accumulation steps on one device), 2048 tokens, bf16 where supported.
    "platolm": {
        "lora": False,
        "epochs": 3.0,
        "learning_rate": 2e-5,
        "lr_scheduler": "cosine",
        "warmup_ratio": 0.03,
        "weight_decay": 0.0,
        "batch_size": 4,
        "grad_accum": 32,
        "max_length": 2048,
    },
    # Self-Talk (Ulmer et al., 2024, App. A.2/B.3): LoRA r64 on all linear layers, lr 5e-4,
    # weight decay 0.01, batch 4, one epoch, inverse-square-root schedule. Alpha and dropout
    # are not published: alpha 2r (128), dropout 0.05.
    "selftalk": {
        "lora": True,
        "lora_r": 64,
        "lora_alpha": 128,
        "epochs": 1.0,
        "learning_rate": 5e-4,
        "lr_scheduler": "inverse_sqrt",
        "weight_decay": 0.01,
        "batch_size": 4,
        "grad_accum": 1,
    },
}


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    preset: Literal["default", "platolm", "selftalk"] = Field(
        "default",
        description="a published recipe for the fields left unset: platolm (full fine-tune, lr 2e-5, cosine, "
        "3% warmup, 128 per step), selftalk (LoRA r64, lr 5e-4, 1 epoch, inverse-sqrt), default (LoRA r16, 2e-4)",
    )
    kind: Literal["simulator", "chat"]
    data: Annotated[list[str], INPUT_FILE] = Field(min_length=1, description="dialogue files (any format)")
    model: str = Field(description="base model: local path, hub id or an embedded model name")
    out: str = Field(description="output directory (final/ loads as a model)")
    template: str = Field(
        "auto", description="auto (the tokenizer's), chatml, llama3, vicuna, dyadic, or a .jinja file"
    )
    system_prompt: str | None = Field(
        None, description="system prompt for rows without one (default: the template's, e.g. PlatoLM's for dyadic)"
    )
    roles: list[Literal["user", "assistant"]] | None = Field(
        None, description="roles with loss (default: user for a simulator, assistant for a chat model)"
    )
    last_turn_only: bool = False
    strategy_conditioned: bool = Field(False, description="data are IDEAS records labelled by `strategies assign`")
    candidates: int = Field(50, ge=1)
    max_length: int = Field(2048, ge=16, description="longest example in tokens")
    lora: bool = Field(True, description="train LoRA adapters (false: full fine-tuning)")
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    packing: bool = Field(False, description="pack several examples into each training sequence (TRL packing)")
    epochs: float = Field(3.0, description="passes over the data (fractions allowed)")
    max_steps: int = Field(-1, description="stop after N optimizer steps (-1: run all the epochs)")
    learning_rate: float = Field(2e-4, description="peak learning rate")
    lr_scheduler: Literal["linear", "cosine", "inverse_sqrt", "constant", "constant_with_warmup"] = "linear"
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    batch_size: int = Field(4, description="examples per device per step")
    grad_accum: int = Field(1, ge=1)
    seed: int = 0
    logging_steps: int = 10
    save_steps: int = 500
    resume: bool = Field(True, description="resume from the last checkpoint in out/ if there is one")
    bf16: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("preset") in PRESETS:
            return {**PRESETS[data["preset"]], **data}
        return data
