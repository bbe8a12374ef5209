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

A distributed executor (`run/ray_executor.py`) implements the same `Executor.run` from the
same parts: `plan_stage` (what to run), `run_jobs` (one block of jobs in one event loop, on
the driver or on a worker with its own `BlockDir`) and `finish_stage` (plan-order rewrite,
summary, health); stages do not change. `run/kernel.py` picks the executor a config names
(`make_executor`, `use_executor`); this module knows no distributed executor.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from abc import ABC, abstractmethod
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..aio import gather_or_cancel
from ..errors import BackendUnavailable
from ..llm.cache import CallCache
from ..llm.client import LLM
from ..llm.pool import BackendPool
from ..llm.types import ChatModel, SamplingParams
from ..llm.usage import UsageTracker
from ..progress import stage_progress
from .health import stage_warnings
from .rundir import RunDir
from .store import LeadingRecords, RecordStore

Records = Collection[dict[str, Any]]  # a stage's records: iterable more than once, with len

log = logging.getLogger("dialforge.run")


@dataclass(frozen=True)
class Job:
    """One unit of work. `id` is stable (a hash of what determines the result) and is the id
    of the record the job produces; `data` is whatever the stage needs to run it."""

    id: str
    data: Any = None
    attempt: int = 0
    """0 for a first run; n for the n-th retry of a failed record. A stage whose failures
    come from replies the call cache keeps (an unparseable answer) passes it as the request's
    `sample_index`, so a retry asks the model anew instead of replaying the cached reply."""


class RunSpace(Protocol):
    """Where jobs keep records, calls and usage: the run directory, or a worker's block
    directory (`run/blockdir.py`) that the driver merges into it."""

    path: Path
    cache: CallCache
    usage: UsageTracker

    def store(self, name: str) -> RecordStore: ...


class StageContext:
    """What a running stage can use: the run directory and LLM roles whose backends come from
    one pool (one backend per endpoint per process: an in-process model loads once)."""

    def __init__(self, run: RunSpace, backends: BackendSource | None = None) -> None:
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

    def endpoint_stats(self) -> dict[str, dict[str, int]]:
        """Calls and failures per server URL, for roles on an endpoint fleet."""
        out: dict[str, dict[str, int]] = {}
        seen: set[int] = set()
        for role in self._roles:
            stats = getattr(role.backend, "endpoint_stats", None)
            if stats is not None and id(role.backend) not in seen:
                seen.add(id(role.backend))
                add_endpoint_stats(out, stats())
        return out

    async def aclose(self) -> None:
        if self._own_backends:
            await self._backends.aclose()


def add_endpoint_stats(into: dict[str, dict[str, int]], more: dict[str, dict[str, int]]) -> None:
    for url, counts in more.items():
        mine = into.setdefault(url, {})
        for k, v in counts.items():
            mine[k] = mine.get(k, 0) + v


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

    def summarise(self, records: Records) -> dict[str, Any]:
        """Stage-specific summary fields; `records` may be streamed from disk (iterate, len)."""
        return {}

    def health(self, records: Records, summary: dict[str, Any]) -> list[str]:
        return stage_warnings(self.name, records, summary)


@dataclass
class StageResult:
    """A finished stage. `records` (plan order) are read from the output file when iterated."""

    name: str
    records: Records
    summary: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


class Executor(Protocol):
    async def run(self, stage: Stage, run: RunDir, *, progress: bool | None = None) -> StageResult: ...


@dataclass
class StagePlan:
    """What a stage run will do: the whole plan (its order is the output order), the jobs to
    run now, and which of them replace a stored failed record."""

    jobs: list[Job]
    store: RecordStore
    todo: list[Job]
    retry: set[str]

    @property
    def order(self) -> list[str]:
        return [j.id for j in self.jobs]


def select_todo(stage: Stage, store: RecordStore, jobs: list[Job]) -> tuple[list[Job], set[str]]:
    """The jobs without a stored record or whose record failed (with their attempt number),
    and the ids of the latter."""
    attempts = {
        r["id"]: int(r.get("attempt") or 0) + 1 for r in store.get_many([j.id for j in jobs]) if stage.failed(r)
    }
    todo = [
        Job(j.id, j.data, attempts[j.id]) if j.id in attempts else j
        for j in jobs
        if j.id not in store or j.id in attempts
    ]
    return todo, set(attempts)


def plan_stage(stage: Stage, run: RunDir) -> StagePlan:
    """Driver side, before any job runs: records a killed worker left behind are merged
    first (`run/blockdir.py`), then stored jobs are skipped and failed ones retried."""
    from .blockdir import recover_blocks

    jobs = stage.plan()
    order = [j.id for j in jobs]
    if len(set(order)) != len(order):
        raise RuntimeError(f"stage {stage.name}: the plan repeats job ids")  # a bug, not user input
    store = run.store(stage.output)
    recover_blocks(stage, run, store)
    todo, retry = select_todo(stage, store, jobs)
    if retry:
        log.info("%s: retrying %d failed job%s from an earlier run", stage.name, len(retry), _s(len(retry)))
    return StagePlan(jobs, store, todo, retry)


async def run_jobs(
    stage: Stage,
    ctx: StageContext,
    store: RecordStore,
    todo: list[Job],
    retry: set[str],
    progress: bool | None,
) -> int:
    """Run `todo` at most `stage.concurrency` at a time, appending each record as it is made;
    the number that failed. The same code runs a whole local stage and one Ray block."""
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
                if job.attempt:
                    rec = {**rec, "attempt": job.attempt}
                log.info("%s: job %s failed: %s", stage.name, job.id, _why(rec))
            # written once the answers behind it are committed (the loop turn's group commit)
            ctx.run.cache.after_commit(functools.partial(store.append, rec, replace=job.id in retry))
            bar.advance(info=f"failed {failed}" if failed else "")

        try:
            await gather_or_cancel(one(j) for j in todo)  # a raising job stops the others first
        finally:
            ctx.run.cache.commit()  # every finished job's record is written, even on the way out
    return failed


def finish_stage(stage: Stage, run: RunDir, plan: StagePlan, **extra: Any) -> StageResult:
    """Driver side, after the jobs: output rewritten in plan order, summary, health, manifest.
    The records are streamed from the output file (a few passes), never held all at once."""
    store = plan.store
    records = LeadingRecords(store.path, store.rewrite(plan.order))
    summary = {
        "jobs": len(plan.jobs),
        "run_now": len(plan.todo),
        "already_done": len(plan.jobs) - len(plan.todo),
        "retried": len(plan.retry),
        "failed": sum(1 for r in records if stage.failed(r)),
        "output": str(store.path),
        **{k: v for k, v in extra.items() if v},
        **stage.summarise(records),
    }
    warnings = stage.health(records, summary)
    for w in warnings:  # the CLI prints them at the end; run.log keeps them in place
        log.info("health warning: %s", w)
    run.stage_done(stage.name, **summary, warnings=warnings)
    return StageResult(stage.name, records, summary, warnings)


class LocalExecutor:
    """Runs a stage's jobs with asyncio in this process."""

    def __init__(self, backends: BackendSource | None = None) -> None:
        self.backends = backends

    async def run(self, stage: Stage, run: RunDir, *, progress: bool | None = None) -> StageResult:
        plan = plan_stage(stage, run)
        ctx = StageContext(run, self.backends)
        run.usage.start_stage(stage.name)
        try:
            if plan.todo:
                await stage.open(ctx)
                await run_jobs(stage, ctx, plan.store, plan.todo, plan.retry, progress)
        finally:
            run.usage.end_stage(stage.name)
            await ctx.aclose()
        return finish_stage(stage, run, plan, endpoints=ctx.endpoint_stats())


_current: contextvars.ContextVar[Executor | None] = contextvars.ContextVar("dialforge_executor", default=None)
"""The executor `kernel.use_executor` set for the stages run in this context."""


def _why(rec: dict[str, Any]) -> str:
    err = rec.get("error") or (rec.get("meta") or {}).get("error") or "failed"
    return str(err)[:300]


def _s(n: int) -> str:
    return "" if n == 1 else "s"


async def run_stage(
    stage: Stage, run: RunDir, *, executor: Executor | None = None, progress: bool | None = None
) -> StageResult:
    """Run `stage` in `run` with `executor` (default: the one `use_executor` set, else the
    local asyncio executor)."""
    return await (executor or _current.get() or LocalExecutor()).run(stage, run, progress=progress)
