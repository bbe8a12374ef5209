"""`executor: ray`: run any stage's jobs in blocks on a Ray cluster, merged by id.

Ray Core tasks, one per block, rather than actors: a block lost with its worker process or
node is simply rerun by Ray (`max_retries`, lineage), Ray hands the next block to whichever
worker is free, and there is no actor state to rebuild after a failure. Each task opens its
own backend pool once for its block (an HTTP session, or an in-process model: use one block
per worker for those) and runs the local executor's `run_jobs` in its own event loop, in a
block folder under the run directory (`run/blockdir.py`).

The driver holds the run-directory lock and owns what the local executor owns: plan, skip
and retry, merging each finished block (records by id, its call cache and usage once), the
plan-order rewrite, summary and health. Outputs are byte-identical to a local run's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DialforgeError
from ..progress import stage_progress
from .blockdir import WORKERS, BlockDir, BlockResult, BlockSpec, block_prefix, merge_block, read_block
from .stage import (
    Job,
    Stage,
    StageContext,
    StagePlan,
    StageResult,
    add_endpoint_stats,
    finish_stage,
    plan_stage,
    run_jobs,
    select_todo,
)

if TYPE_CHECKING:
    from .config import ExecutorConfig
    from .rundir import RunDir

log = logging.getLogger("dialforge.run")

_REMOTE: dict[str, Any] = {}


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise DialforgeError(
            "executor ray needs Ray: pip install 'dialforge[ray]' (or run with --executor local)"
        ) from None
    return ray


def execute_block(stage: Stage, jobs: list[Job], spec: BlockSpec) -> BlockResult:
    """Worker side: run `jobs` with the local executor's logic in a fresh event loop."""
    t0 = time.perf_counter()
    shared = Path(spec.marker).exists()
    tmp = None if shared else tempfile.mkdtemp(prefix="dialforge-block-")
    folder = Path(spec.folder) if shared else Path(tmp or "")
    try:
        res = asyncio.run(_execute(stage, jobs, spec, folder, shared))
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    res.wall_s = time.perf_counter() - t0
    return res


async def _execute(stage: Stage, jobs: list[Job], spec: BlockSpec, folder: Path, shared: bool) -> BlockResult:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "attempts").open("a") as f:  # one line per attempt: a retried block shows it
        f.write(f"{os.getpid()}\n")
    attempts = len((folder / "attempts").read_text().splitlines())
    bd = BlockDir(folder, Path(spec.base_cache) if shared else None, read_cache=spec.read_cache)
    try:
        store = bd.store(stage.output)
        todo, retry = select_todo(stage, store, jobs)
        ctx = StageContext(bd)
        try:
            if todo:
                await stage.open(ctx)
                await run_jobs(stage, ctx, store, todo, retry, progress=False)
        finally:
            await ctx.aclose()
        return BlockResult(
            tag=spec.tag,
            records=list(store.get_many([j.id for j in jobs])),
            calls=bd.cache.call_rows(),
            usage=bd.cache.usage_rows(),
            endpoints=ctx.endpoint_stats(),
            attempts=attempts,
            reused=len(jobs) - len(todo),
            pid=os.getpid(),
            shared=shared,
        )
    finally:
        bd.close()


def _run_block(stage: Stage, jobs: list[Job], spec: BlockSpec) -> BlockResult:
    """The Ray task body."""
    import ray

    res = execute_block(stage, jobs, spec)
    res.node = ray.get_runtime_context().get_node_id()
    return res


class RayExecutor:
    """Runs a stage's jobs as Ray tasks, `block_size` jobs each, `workers` blocks at once."""

    def __init__(
        self,
        address: str | None = None,
        *,
        workers: int | None = None,
        block_size: int | None = None,
        max_retries: int = 3,
        num_cpus: float = 1.0,
    ) -> None:
        self.address = address
        self.workers = workers
        self.block_size = block_size
        self.max_retries = max_retries
        self.num_cpus = num_cpus

    @classmethod
    def from_config(cls, cfg: ExecutorConfig) -> RayExecutor:
        return cls(
            cfg.address,
            workers=cfg.workers,
            block_size=cfg.block_size,
            max_retries=cfg.max_retries,
            num_cpus=cfg.num_cpus,
        )

    def _connect(self) -> Any:
        ray = _ray()
        if not ray.is_initialized():
            kw: dict[str, Any] = {"include_dashboard": False} if self.address is None else {}
            if self.address is None:
                reap_orphaned_agents()  # what a killed driver's own local cluster left behind
            ray.init(address=self.address, logging_level=logging.WARNING, **kw)
        return ray

    def blocks(self, todo: list[Job], workers: int, concurrency: int) -> list[list[Job]]:
        """About four blocks per worker (a lost block costs little, a slow one does not hold the
        end), each with at least twice the stage's concurrency in jobs (a block keeps its
        event loop busy) unless that leaves workers idle."""
        n = len(todo)
        size = self.block_size or max(1, math.ceil(n / (4 * workers)), min(2 * concurrency, math.ceil(n / workers)))
        return [todo[i : i + size] for i in range(0, n, size)]

    async def run(self, stage: Stage, run: RunDir, *, progress: bool | None = None) -> StageResult:
        ray = self._connect()
        plan = plan_stage(stage, run)
        stats = _Stats()
        run.usage.start_stage(stage.name)
        try:
            if plan.todo:
                await self._run_blocks(ray, stage, run, plan, progress, stats)
        finally:
            run.usage.end_stage(stage.name)
        return finish_stage(stage, run, plan, endpoints=stats.endpoints, ray=stats.summary())

    async def _run_blocks(
        self, ray: Any, stage: Stage, run: RunDir, plan: StagePlan, progress: bool | None, stats: _Stats
    ) -> None:
        workers = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1) // self.num_cpus))
        blocks = self.blocks(plan.todo, workers, stage.concurrency)
        token = uuid.uuid4().hex[:8]
        root = run.path / WORKERS
        root.mkdir(parents=True, exist_ok=True)
        marker = root / f".driver-{token}"
        marker.touch()
        if "fn" not in _REMOTE:
            _REMOTE["fn"] = ray.remote(_run_block)
        task = _REMOTE["fn"].options(max_retries=self.max_retries, retry_exceptions=False, num_cpus=self.num_cpus)
        stage_ref = ray.put(stage)
        stats.workers, stats.block_size = workers, len(blocks[0])
        queue = list(enumerate(blocks))[::-1]
        pending: dict[asyncio.Future[Any], tuple[BlockSpec, list[Job], float]] = {}
        refs: dict[asyncio.Future[Any], Any] = {}

        def submit() -> None:
            i, jobs = queue.pop()
            tag = f"{block_prefix(stage)}{token}.{i:05d}"
            spec = BlockSpec(tag, str(root / tag), str(marker), str(run.cache.path), run.cache.read)
            ref = task.remote(stage_ref, jobs, spec)
            fut = asyncio.wrap_future(ref.future())
            pending[fut] = (spec, jobs, time.perf_counter())
            refs[fut] = ref

        try:
            with stage_progress(stage.name, len(plan.todo), run.usage, progress) as bar:
                while queue or pending:
                    while queue and len(pending) < workers:
                        submit()
                    done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    for fut in done:
                        spec, jobs, t0 = pending.pop(fut)
                        refs.pop(fut)
                        stats.failed += self._collect(ray, fut, stage, run, plan, spec, jobs, t0, stats)
                        bar.advance(len(jobs), info=f"failed {stats.failed}" if stats.failed else "")
        except BaseException:
            for ref in refs.values():
                ray.cancel(ref)  # what unfinished blocks made stays in their folders: the next run merges it
            raise
        finally:
            marker.unlink(missing_ok=True)
            if not any(root.iterdir()):
                root.rmdir()

    def _collect(
        self,
        ray: Any,
        fut: asyncio.Future[Any],
        stage: Stage,
        run: RunDir,
        plan: StagePlan,
        spec: BlockSpec,
        jobs: list[Job],
        t0: float,
        stats: _Stats,
    ) -> int:
        try:
            res: BlockResult = fut.result()
        except ray.exceptions.RayTaskError as e:  # the stage itself raised (e.g. in open)
            raise e.as_instanceof_cause() from None
        except ray.exceptions.RayError as e:  # lost with its worker or node, retries spent
            return self._lost(stage, run, plan, spec, jobs, f"{type(e).__name__}: {e}".splitlines()[0])
        stats.add(res, time.perf_counter() - t0)
        t1 = time.perf_counter()
        failed = merge_block(stage, run, plan.store, res, plan.retry)
        stats.merge_s += time.perf_counter() - t1
        return failed

    def _lost(self, stage: Stage, run: RunDir, plan: StagePlan, spec: BlockSpec, jobs: list[Job], why: str) -> int:
        """A block Ray gave up on: what it finished is kept, the rest become failure records
        (retried by the next run)."""
        log.warning("%s: block %s lost after %d retries: %s", stage.name, spec.tag, self.max_retries, why)
        done: set[str] = set()
        folder = run.path / WORKERS / spec.tag
        if folder.is_dir():
            res = read_block(folder, stage)
            done = {r["id"] for r in res.records}
            merge_block(stage, run, plan.store, res, plan.retry)
        lost = [stage.failure(j, f"block lost: {why}") for j in jobs if j.id not in done]
        return merge_block(stage, run, plan.store, BlockResult(spec.tag + ".lost", lost, [], []), plan.retry)


class _Stats:
    """Per-run figures for the summary: blocks, retries, nodes, Ray's overhead per block."""

    def __init__(self) -> None:
        self.workers = 0
        self.block_size = 0
        self.blocks = 0
        self.failed = 0
        self.attempts = 0
        self.reused = 0
        self.nodes: set[str] = set()
        self.overhead_s = 0.0
        self.merge_s = 0.0  # the driver's share: cache rows, usage and records into the run
        self.endpoints: dict[str, dict[str, int]] = {}

    def add(self, res: BlockResult, seen_s: float) -> None:
        self.blocks += 1
        self.attempts += res.attempts
        self.reused += res.reused
        self.nodes.add(res.node)
        self.overhead_s += max(0.0, seen_s - res.wall_s)
        add_endpoint_stats(self.endpoints, res.endpoints)

    def summary(self) -> dict[str, Any]:
        if not self.blocks:
            return {}
        return {
            "workers": self.workers,
            "block_size": self.block_size,
            "blocks": self.blocks,
            "block_retries": self.attempts - self.blocks,
            "jobs_kept_from_lost_attempts": self.reused,
            "nodes": len(self.nodes),
            "overhead_s_per_block": round(self.overhead_s / self.blocks, 4),
            "merge_s_per_block": round(self.merge_s / self.blocks, 4),
        }


#: The processes Ray's raylet starts beside itself that outlive a driver killed with -9 (Ray
#: 2.60: its GCS, raylet, monitors and workers end with it; these two are left, adopted by init).
_AGENTS = ("ray::DashboardAgent", "ray::RuntimeEnvAgent")


def reap_orphaned_agents(grace_s: float = 2.0) -> list[int]:
    """End this user's Ray agent processes whose raylet is gone: an agent adopted by another
    parent (init, a subreaper) that is not a raylet, whose process group (the driver that
    started the local cluster) has no leader left. Those of a live cluster, or of another
    user, are never touched. Returns the pids ended (Linux /proc; elsewhere nothing)."""
    import signal

    proc = Path("/proc")
    if not proc.is_dir():
        return []
    found = [int(d.name) for d in proc.iterdir() if d.name.isdigit() and _orphaned_agent(proc, d)]
    for pid in found:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while found and time.monotonic() < deadline and any((proc / str(p)).exists() for p in found):
        time.sleep(0.1)
    for pid in found:  # the agents may ignore SIGTERM once their raylet is gone
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    if found:
        log.warning("ended %d Ray agent process(es) a killed run left: %s", len(found), found)
    return found


def _orphaned_agent(proc: Path, d: Path) -> bool:
    """Whether process folder `d` is one of this user's Ray agents whose raylet and driver are gone."""
    try:
        name = (d / "cmdline").read_bytes().split(b"\0", 1)[0].decode(errors="replace").strip()
        if name not in _AGENTS or d.stat().st_uid != os.getuid():
            return False
        fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        ppid, pgid = int(fields[1]), int(fields[2])
        parent = (proc / str(ppid) / "cmdline").read_bytes() if ppid > 1 else b""
        # its raylet, or the driver that started it, still lives
        return not (b"raylet" in parent or (pgid != int(d.name) and (proc / str(pgid)).exists()))
    except (OSError, ValueError, IndexError):
        return False


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True
