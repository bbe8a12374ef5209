"""Workflow graphs, real-schema importers, the self-talk loop and the subgoal tracker."""

from .importers import import_abcd, import_star, write_workflows
from .model import Option, Step, Workflow, draw, load_workflow, load_workflows
from .selftalk import FilterSpec, SelfTalkConfig, apply_filter, run_dialogue, selftalk, selftalk_async
from .tracker import THRESHOLD, rouge_l, track

__all__ = [
    "THRESHOLD",
    "FilterSpec",
    "Option",
    "SelfTalkConfig",
    "Step",
    "Workflow",
    "apply_filter",
    "draw",
    "import_abcd",
    "import_star",
    "load_workflow",
    "load_workflows",
    "rouge_l",
    "run_dialogue",
    "selftalk",
    "selftalk_async",
    "track",
    "write_workflows",
]
