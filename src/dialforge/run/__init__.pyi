# The names `run/__init__.py` exports, each loaded on first use (dialforge/_lazy.py).
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
