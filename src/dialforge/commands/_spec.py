"""What a command is, as data: its name, its config, the few flags bound to config fields.

The adapter (`_adapter.py`) turns one `Command` into the typer command users see; nothing
here imports typer, a config class or an engine module, so `dialforge --help` stays quick.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_UNSET: Any = object()


@dataclass(frozen=True)
class Opt:
    """A flag bound to a (dotted) config field: its type, default and help come from the field.

    `flag` may be `--x/--no-x` for a boolean; a single-name boolean flag sets `value` (default
    True) when given. `kind` overrides the type read from the field (`list[Path]` for input
    files); `help` replaces the field's description where the command line needs other words."""

    flag: str
    path: str
    help: str | None = None
    kind: Any = None
    value: Any = _UNSET
    required: bool = False


@dataclass(frozen=True)
class Arg:
    """A command's own parameter (not a config field): an output folder, an input file, `--json`."""

    name: str  # the Python name the command's function reads it by
    kind: Any
    help: str
    flag: str | None = None  # `--out`; None: a positional argument
    default: Any = None
    required: bool = False
    metavar: str | None = None


@dataclass(frozen=True)
class Backends:
    """Backend flags: `--model/--base-url` for every role in `shared`, then per-role flags
    (`own`: role, model flag, base-url flag) on top; `--api-key-env` for all of them."""

    shared: tuple[str, ...] = ()
    own: tuple[tuple[str, str, str], ...] = ()
    model_help: str | None = None
    required: tuple[str, ...] = ()  # flags that must be given (`eval mt-bench --model --judge`)


@dataclass(frozen=True)
class Command:
    """One `dialforge` command. `config` names its config class (`module:Class`, imported only
    when the command is built); without one, `run` is a plain typer function used as is."""

    name: str
    summary: str
    run: Callable[..., Any]
    config: str | None = None
    opts: tuple[Opt, ...] = ()
    args: tuple[Arg, ...] = ()
    backends: Backends | None = None
    config_arg: str = "option"  # option | required | argument (`run CONFIG`) | none (fixed config)
    config_help: str | None = None
    resumable: bool = False  # Ctrl-C says a re-run resumes; takes --force-new unless force_new=False
    force_new: bool | None = None
    cache: bool = False  # takes --no-cache
    strict: bool = False  # takes --strict
    executor: str | None = None  # --executor/--ray-address: "config" (its `executor` field) or "stages"
    group: str | None = None  # `eval`, `strategies`, `workflows`


@dataclass(frozen=True)
class Group:
    """A command with subcommands (`dialforge eval mt-bench`)."""

    name: str
    summary: str


@dataclass
class Result:
    """What a command reports, printed in one place (`_output.show`): its one-line summaries
    (stderr), its data (JSON on stdout), then the run's health warnings (`--strict`: exit 3)."""

    lines: list[str] = field(default_factory=list)
    data: Any = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class Call:
    """One invocation of a config-backed command, after the flags are read: what its function gets."""

    command: Command
    config: Path | None
    overrides: dict[str, Any]
    sets: list[str]
    values: dict[str, Any]  # the command's own `Arg`s by name
    force_new: bool = False
    use_cache: bool = True
    strict: bool = False
    executor: tuple[str | None, str | None] = (None, None)  # --executor, --ray-address

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def load(self, cls: type[Any] | None = None, config: Path | None = _UNSET) -> Any:
        """The command's config: YAML, then flags, then `--set`; every input checked now."""
        from ._load import load_checked, resolve

        cls = cls or resolve(self.command.config or "")
        return load_checked(cls, self.config if config is _UNSET else config, self.overrides, self.sets)
