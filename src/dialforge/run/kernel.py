"""The stage kernel's front: the executor a config asks for, and the names every stage uses.

A stage is a plan of jobs with stable ids plus how to run one job (`run/stage.py`: `Stage`,
`StageContext`, the local executor and the parts every executor is made of); an executor
runs the plan, in this process or on Ray (`run/ray_executor.py`, built from the same parts).
`make_executor` turns an `ExecutorConfig` into one; `use_executor` sets the executor for
every stage run in a context (the CLI's `--executor ray`). Stages import from here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .config import ExecutorConfig
from .stage import (
    BackendSource,
    Executor,
    Job,
    LocalExecutor,
    Records,
    RunSpace,
    Stage,
    StageContext,
    StagePlan,
    StageResult,
    _current,
    add_endpoint_stats,
    finish_stage,
    plan_stage,
    run_jobs,
    run_stage,
    select_todo,
)

__all__ = [
    "BackendSource",
    "Executor",
    "ExecutorConfig",
    "Job",
    "LocalExecutor",
    "Records",
    "RunSpace",
    "Stage",
    "StageContext",
    "StagePlan",
    "StageResult",
    "add_endpoint_stats",
    "finish_stage",
    "make_executor",
    "plan_stage",
    "run_jobs",
    "run_stage",
    "select_todo",
    "use_executor",
]


def make_executor(cfg: ExecutorConfig | str | None, pool: BackendSource | None = None) -> Executor:
    """The executor a config asks for; None: the one `use_executor` set, else local. A local
    executor serves its stages from `pool` (Ray workers build their own backends)."""
    if cfg is None:
        return _current.get() or LocalExecutor(pool)
    cfg = ExecutorConfig.model_validate(cfg)
    if cfg.kind == "local":
        return LocalExecutor(pool)
    from .ray_executor import RayExecutor

    return RayExecutor.from_config(cfg)


@contextmanager
def use_executor(executor: Executor | ExecutorConfig | str | None) -> Iterator[None]:
    """Run every stage started in this context (that names no executor) on `executor`."""
    if isinstance(executor, ExecutorConfig | str):
        executor = make_executor(executor)
    token = _current.set(executor)
    try:
        yield
    finally:
        _current.reset(token)
