# The names `report/__init__.py` exports, each loaded on first use (dialforge/_lazy.py).
from .collect import Run, read_run, read_runs
from .page import render
from .write import write_report

__all__ = ["Run", "read_run", "read_runs", "render", "write_report"]
