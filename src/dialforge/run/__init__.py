"""Run directories (manifest, lock, resumable outputs, cache, usage) and the stage kernel."""

from .kernel import Executor, Job, LocalExecutor, Stage, StageContext, StageResult, run_stage
from .lock import RunDirLocked, RunLock
from .rundir import RunDir, config_fingerprint
from .store import RecordStore

__all__ = [
    "Executor",
    "Job",
    "LocalExecutor",
    "RecordStore",
    "RunDir",
    "RunDirLocked",
    "RunLock",
    "Stage",
    "StageContext",
    "StageResult",
    "config_fingerprint",
    "run_stage",
]
