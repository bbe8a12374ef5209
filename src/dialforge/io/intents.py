"""Client intents for self-talk from a file: the user goals of a dialogue corpus (ConvLab-3,
MultiWOZ, STAR, Taskmaster, ... : `meta["goal"]`), an intents file written by `workflows
import` (`{workflow: [intent, ...]}` as JSON or YAML), or a plain list of intents (text
lines, a JSON/YAML list).

Goals of dialogues that name their task (`meta["task"]`: STAR, ABCD) are keyed by it, which
is the name `workflows import` gives that task's workflow; all other goals form a flat list
that every workflow may draw from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import DialforgeError
from ._records import load_json

Intents = dict[str, list[str]] | list[str]


def _texts(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(x, str) for x in value)


def _from_object(data: Any) -> Intents | None:
    """An intents mapping or list, or None when `data` is something else (a dialogue file)."""
    if _texts(data):
        return [x for x in data if x.strip()]
    if isinstance(data, dict) and data and all(_texts(v) for v in data.values()):
        return {str(k): [x for x in v if x.strip()] for k, v in data.items()}
    return None


def read_intents(path: str | Path) -> Intents:
    """{workflow name: [intents]} or a flat list of intents (see the module docstring)."""
    path = Path(path)
    if not path.exists():
        raise DialforgeError(f"{path}: intents file not found")
    if path.suffix in (".yaml", ".yml"):
        from .yaml_files import read_yaml

        got = _from_object(read_yaml(path, "intents file"))
        if got is None:
            raise DialforgeError(f"{path}: expected a list of intents or a mapping workflow -> [intents]")
        return got
    if path.suffix == ".json":
        got = _from_object(load_json(path))
        if got is not None:
            return got
    if path.suffix not in (".json", ".jsonl", ".ndjson"):
        from .seeds import read_seeds

        return read_seeds(path)
    return _goals(path)


def _goals(path: Path) -> Intents:
    """The goal texts of a dialogue file, keyed by task where dialogues name one."""
    from .reader import read_conversations

    by_task: dict[str, list[str]] = {}
    flat: list[str] = []
    for c in read_conversations(path, on_error="skip"):
        goal = c.meta.get("goal")
        if not isinstance(goal, str) or not goal.strip():
            continue
        task = c.meta.get("task")
        if isinstance(task, str) and task:
            by_task.setdefault(task, []).append(goal)
        else:
            flat.append(goal)
    if not by_task and not flat:
        raise DialforgeError(f"{path}: no dialogue in this file has a goal text (meta.goal) to use as an intent")
    if by_task and flat:
        by_task["*"] = flat
    return by_task or flat


def intents_for(path: str | Path, workflows: list[str]) -> dict[str, list[str]]:
    """Intents per workflow: a flat list (or the `*` entry) goes to every workflow the file
    does not name."""
    got = read_intents(path)
    if isinstance(got, list):
        return {w: list(got) for w in workflows}
    rest = got.pop("*", None)
    out = {k: v for k, v in got.items() if k in workflows}
    if rest:
        for w in workflows:
            out.setdefault(w, list(rest))
    if not out:
        names = ", ".join(list(got)[:5])
        raise DialforgeError(
            f"{path}: none of its intents is for these workflows (it names {names}; workflows: "
            f"{', '.join(workflows[:5])}{', ...' if len(workflows) > 5 else ''})"
        )
    return out
