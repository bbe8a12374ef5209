"""Run configuration as data: where a command's stages run. Imports no engine module."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ExecutorConfig(BaseModel):
    """Where a command's stages run. `executor: ray` (or `{kind: ray, address: auto}`) in a
    config, `--executor ray [--ray-address auto|HOST:PORT]` on the command line. How a run
    executes never changes what it produces: switching executors resumes the same run."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["local", "ray"] = "local"
    address: str | None = Field(
        None, description="ray: `auto` (the running cluster), HOST:PORT, or unset to start one on this machine"
    )
    workers: int | None = Field(None, ge=1, description="ray: blocks in flight at once (default: the cluster's CPUs)")
    block_size: int | None = Field(None, ge=1, description="ray: jobs per block (default: about 4 blocks per worker)")
    max_retries: int = Field(3, ge=0, description="ray: times a block lost with its worker or node is rerun")
    num_cpus: float = Field(1.0, gt=0, description="ray: CPUs each block reserves")

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        return {"kind": value} if isinstance(value, str) else value
