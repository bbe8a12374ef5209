"""The stage kernel: a stage is a plan of jobs with stable ids plus how to run one job; an
executor runs the plan. Stages never hand-roll the skeleton.

What the local executor guarantees, once for every stage:
- one process per run directory (the RunDir lock);
- jobs whose record is stored are skipped; a stored *failed* record is retried (and counted);
- at most `concurrency` jobs in flight; progress with ETA; usage start/end;
- an exception in one job becomes that job's failure record, never the stage's end;
- the output file is rewritten in plan order when the stage ends, so identical runs write
  identical bytes whatever the completion order;
- run.log lines for failures and warnings; an end-of-stage summary with health warnings,
  stored in the manifest.

A distributed executor (Ray) implements the same `Executor.run`: it may split the plan into
blocks, run `LocalExecutor` over each block where the backends live, and merge the records
into the run directory by id; stages do not change.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import BackendUnavailable
from ..llm.client import LLM
from ..llm.config import BackendPool
from ..llm.types import ChatModel, SamplingParams
from ..progress import stage_progress
from .health import stage_warnings
from .rundir import RunDir

log = logging.getLogger("dialforge.run")


@dataclass(frozen=True)
class Job:
    """One unit of work. `id` is stable (a hash of what determines the result) and is the id
    of the record the job produces; `data` is whatever the stage needs to run it."""

    id: str
    data: Any = None


class StageContext:
    """What a running stage can use: the run directory and LLM roles whose backends come from
    one pool (one backend per endpoint per process: an in-process model loads once)."""

    def __init__(self, run: RunDir, backends: BackendSource | None = None) -> None:
        self.run = run
        self._own_backends = backends is None  # a pool handed in is closed by whoever made it
        self._backends = backends if backends is not None else BackendPool()
        self._roles: list[LLM] = []

    def llm(
        self,
        backend: Any,
        stage: str,
        *,
        params: SamplingParams | None = None,
        system_prompt: str | None = None,
    ) -> LLM:
        """An LLM role on `backend` (a BackendConfig), cached and counted under `stage`."""
        llm = LLM(
            self._backends.get(backend),
            cache=self.run.cache,
            usage=self.run.usage,
            stage=stage,
            params=params if params is not None else backend.params,
            system_prompt=system_prompt if system_prompt is not None else backend.system_prompt,
        )
        self._roles.append(llm)
        return llm

    async def aclose(self) -> None:
        if self._own_backends:
            await self._backends.aclose()


class BackendSource(Protocol):
    def get(self, cfg: Any) -> ChatModel: ...

    async def aclose(self) -> None: ...


class Stage(ABC):
    """Subclass and fill in: `name` (usage/progress/manifest key), `output` (the records file,
    relative to the run directory), `plan()`, `run_job()`. Override `failed()`, `failure()`,
    `summarise()` and `health()` where the stage knows better."""

    name: str = "stage"
    output: str = "records.jsonl"
    concurrency: int = 64

    @abstractmethod
    def plan(self) -> list[Job]: ...

    async def open(self, ctx: StageContext) -> None:  # noqa: B027 (optional hook)
        """Build LLM roles (`ctx.llm(...)`) once per process before the first job."""

    @abstractmethod
    async def run_job(self, job: Job, ctx: StageContext) -> dict[str, Any]:
        """The record for `job` (a dict whose `id` is `job.id`)."""

    def failed(self, record: dict[str, Any]) -> bool:
        """A failed record is kept (nothing is lost) and retried by the next run."""
        return bool(record.get("error")) or (record.get("meta") or {}).get("termination_reason") == "error"

    def failure(self, job: Job, error: str) -> dict[str, Any]:
        """The record stored when `run_job` raised."""
        return {"id": job.id, "error": error}

    def summarise(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        return {}

    def health(self, records: list[dict[str, Any]], summary: dict[str, Any]) -> list[str]:
        return stage_warnings(self.name, records, summary, failed=[r for r in records if self.failed(r)])


@dataclass
class StageResult:
    name: str
    records: list[dict[str, Any]]
    summary: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


class Executor(Protocol):
    async def run(self, stage: Stage, run: RunDir, *, progress: bool | None = None) -> StageResult: ...


class LocalExecutor:
    """Runs a stage's jobs with asyncio in this process."""

    def __init__(self, backends: BackendSource | None = None) -> None:
        self.backends = backends

    async def run(self, stage: Stage, run: RunDir, *, progress: bool | None = None) -> StageResult:
        plan = stage.plan()
        order = [j.id for j in plan]
        if len(set(order)) != len(order):
            raise RuntimeError(f"stage {stage.name}: the plan repeats job ids")  # a bug, not user input
        store = run.store(stage.output)
        retry = {r["id"] for r in store.get_many(order) if stage.failed(r)}
        todo = [j for j in plan if j.id not in store or j.id in retry]
        if retry:
            log.info("%s: retrying %d failed job%s from an earlier run", stage.name, len(retry), _s(len(retry)))
        ctx = StageContext(run, self.backends)
        run.usage.start_stage(stage.name)
        try:
            if todo:
                await stage.open(ctx)
                await self._run_jobs(stage, ctx, store, todo, retry, progress)
        finally:
            run.usage.end_stage(stage.name)
            await ctx.aclose()
        store.rewrite(order)
        records = list(store.get_many(order))
        summary = {
            "jobs": len(plan),
            "run_now": len(todo),
            "already_done": len(plan) - len(todo),
            "retried": len(retry),
            "failed": sum(1 for r in records if stage.failed(r)),
            "output": str(store.path),
            **stage.summarise(records),
        }
        warnings = stage.health(records, summary)
        for w in warnings:  # the CLI prints them at the end; run.log keeps them in place
            log.info("health warning: %s", w)
        run.stage_done(stage.name, **summary, warnings=warnings)
        return StageResult(stage.name, records, summary, warnings)

    async def _run_jobs(
        self,
        stage: Stage,
        ctx: StageContext,
        store: Any,
        todo: list[Job],
        retry: set[str],
        progress: bool | None,
    ) -> None:
        sem = asyncio.Semaphore(stage.concurrency)
        failed = 0
        with stage_progress(stage.name, len(todo), ctx.run.usage, progress) as bar:

            async def one(job: Job) -> None:
                nonlocal failed
                async with sem:
                    try:
                        rec = await stage.run_job(job, ctx)
                    except BackendUnavailable:  # a dead or refusing server: every job would fail alike
                        raise
                    except Exception as e:  # one broken job never kills the stage
                        log.debug("job %s of %s raised", job.id, stage.name, exc_info=True)
                        rec = stage.failure(job, f"{type(e).__name__}: {e}")
                if stage.failed(rec):
                    failed += 1
                    log.info("%s: job %s failed: %s", stage.name, job.id, _why(rec))
                store.append(rec, replace=job.id in retry)
                bar.advance(info=f"failed {failed}" if failed else "")

            tasks = [asyncio.ensure_future(one(j)) for j in todo]
            try:
                await asyncio.gather(*tasks)
            except BaseException:  # stop the other jobs before the backends close under them
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise


def _why(rec: dict[str, Any]) -> str:
    err = rec.get("error") or (rec.get("meta") or {}).get("error") or "failed"
    return str(err)[:300]


def _s(n: int) -> str:
    return "" if n == 1 else "s"


async def run_stage(
    stage: Stage, run: RunDir, *, executor: Executor | None = None, progress: bool | None = None
) -> StageResult:
    """Run `stage` in `run` with `executor` (default: the local asyncio executor)."""
    return await (executor or LocalExecutor()).run(stage, run, progress=progress)


def records_of(results: Iterable[StageResult]) -> list[dict[str, Any]]:
    return [r for res in results for r in res.records]
