# The names `workflows/__init__.py` exports, each loaded on first use (dialforge/_lazy.py).
from .agent import WorkflowAgent, selftalk_engine, selftalk_seed
from .config import THRESHOLD, FilterSpec, SelfTalkConfig
from .importers import import_abcd, import_star, write_workflows
from .model import Option, Step, Workflow, draw, load_workflow, load_workflows
from .selftalk import apply_filter, selftalk, selftalk_async
from .tracker import rouge_l, track

__all__ = [
    "THRESHOLD",
    "FilterSpec",
    "Option",
    "SelfTalkConfig",
    "Step",
    "Workflow",
    "WorkflowAgent",
    "apply_filter",
    "draw",
    "import_abcd",
    "import_star",
    "load_workflow",
    "load_workflows",
    "rouge_l",
    "selftalk",
    "selftalk_async",
    "selftalk_engine",
    "selftalk_seed",
    "track",
    "write_workflows",
]
