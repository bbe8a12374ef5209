"""Every `dialforge` command, in the order `dialforge --help` lists them.

Adding a command: define a `Command` in one of the modules below (or a new one) and list that
module here once."""

from __future__ import annotations

from functools import cache

from ._spec import Command, Group


@cache
def _all() -> tuple[Command | Group, ...]:
    from . import data, evaluate, generate, library, training

    every = [c for m in (data, generate, training, evaluate, library) for c in m.COMMANDS]
    top = [c for c in every if _group(c) is None]
    top.sort(key=lambda c: _ORDER.index(c.name) if c.name in _ORDER else len(_ORDER))
    return (*top, *(c for c in every if _group(c) is not None))


# the order of `dialforge --help`: a day's work from data to report
_ORDER = (
    "convert formats seeds stats answer induce simulate modes train score metrics filter dedup export check "
    "eval workflows selftalk agent run demo report strategies realism"
).split()


def _group(c: Command | Group) -> str | None:
    return c.group if isinstance(c, Command) else None


def entries(group: str | None = None) -> dict[str, Command | Group]:
    """The commands (and groups) directly under `group` (None: the top level), by name."""
    return {c.name: c for c in _all() if _group(c) == group}


def resumable() -> set[str]:
    """Commands a re-run resumes after Ctrl-C (their run directory or checkpoints say where)."""
    names = {c.name for c in _all() if isinstance(c, Command) and c.resumable and c.group is None}
    return names | {c.group for c in _all() if isinstance(c, Command) and c.resumable and c.group}


__all__ = ["entries", "resumable"]
