"""The command tree, built lazily: a command (and its config class) is built only when it runs
or its help is shown, so `dialforge --help` and `dialforge stats` import no config."""

from __future__ import annotations

import difflib
import re
import textwrap
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from ._adapter import build, metavar
from ._spec import Command, Group

#: click settings every command shares: `-h` is `--help`; help wraps at the terminal, never cuts.
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


_Context: Any = TyperCommand.context_class
# click's UsageError, wherever typer takes click from (typer >= 0.22 vendors it)
_UsageError: Any = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


def _wrap(text: str, width: int) -> list[str]:
    """Lines of at most `width`, never broken inside a word or at a hyphen (names stay whole)."""
    return textwrap.wrap(text, max(width, 10), break_on_hyphens=False, break_long_words=False) or [""]


class _Formatter(_Context.formatter_class):  # type: ignore[misc]
    """click's help layout, wrapped at spaces only: `--require-alternation`, `all-MiniLM-L6-v2`
    and `new_assistant_turns` read whole at any width."""

    def write_text(self, text: str) -> None:
        indent = " " * self.current_indent
        for i, para in enumerate(textwrap.dedent(text).split("\n\n")):
            if i:
                self.write("\n")
            if para.startswith("\b\n"):  # click's mark for a paragraph kept as written
                self.write("".join(f"{indent}{line}\n" for line in para[2:].splitlines()))
            else:
                self.write(
                    "".join(f"{indent}{line}\n" for line in _wrap(" ".join(para.split()), self.width - len(indent)))
                )

    def write_dl(self, rows: Any, col_max: int = 30, col_spacing: int = 2) -> None:
        rows = [(re.sub(r" <[^<>]*>$", "", a), b) for a, b in rows]  # typer's `SRC <path>`: the name says it
        first_col = min(max((len(a) for a, _ in rows), default=0), col_max) + col_spacing
        pad = " " * (first_col + self.current_indent)
        for first, second in rows:
            self.write(f"{'':>{self.current_indent}}{first}")
            if not second:
                self.write("\n")
                continue
            self.write(" " * (first_col - len(first)) if len(first) <= first_col - col_spacing else "\n" + pad)
            lines = _wrap(" ".join(second.split()), self.width - first_col - self.current_indent)
            self.write(lines[0] + "\n" + "".join(f"{pad}{line}\n" for line in lines[1:]))


class Context(_Context):  # type: ignore[misc]
    formatter_class = _Formatter


def _plain_metavars(cmd: Any) -> None:
    """Metavars as users type them (`PATH`, `N`), not typer's `{path}` / `<list[Path]>`."""
    for p in cmd.params:
        if p.metavar is not None or getattr(p, "is_flag", False) or getattr(p, "is_bool_flag", False):
            continue
        if p.param_type_name == "argument":
            p.metavar = p.name.upper()
        else:
            kind = getattr(getattr(p, "type", None), "name", "")
            p.metavar = {"integer": "N", "float": "X", "path": "PATH"}.get(kind, "TEXT")


class PlainCommand(TyperCommand):
    """typer's command with click's plain usage line (`KIND`, not `{KIND}`)."""

    context_class = Context

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return [re.sub(r"^\{(.*)\}", r"\1", p) for p in super().collect_usage_pieces(ctx)]


def build_command(cmd: Command) -> Any:
    sub = typer.Typer(rich_markup_mode=None, add_completion=False, context_settings=CONTEXT)
    sub.command(name=cmd.name, help=cmd.summary, cls=PlainCommand)(build(cmd))
    click_cmd = typer.main.get_command(sub)
    _plain_metavars(click_cmd)
    return click_cmd


class LazyGroup(TyperGroup):
    """A group whose subcommands come from the registry (`commands/registry.py`)."""

    key: str | None = None  # None: the root; else the group's name (`eval`)
    context_class = Context

    def _entries(self) -> dict[str, Command | Group]:
        from .registry import entries

        return entries(self.key)

    def list_commands(self, ctx: Any) -> list[str]:
        return [
            *(n for n, c in self.commands.items() if c is not None),
            *(n for n in self._entries() if n not in self.commands),
        ]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        entry = self._entries().get(cmd_name)
        if entry is None:
            return None
        if isinstance(entry, Group):
            built: Any = LazyGroup(
                name=entry.name,
                help=entry.summary,
                no_args_is_help=True,
                rich_markup_mode=None,
                context_settings=CONTEXT,
            )
            built.key = entry.name
        else:
            built = build_command(entry)
        self.commands[cmd_name] = built
        return built

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        """typer's, with its "Did you mean" drawn from every registered name, built or not."""
        try:
            return super().resolve_command(ctx, args)
        except _UsageError as e:
            near = difflib.get_close_matches(args[0], list(self._entries())) if args else []
            if near and "Did you mean" not in e.message:
                e.message += f" Did you mean {near[0]!r}?"
            raise

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """The command list from the registry's summary lines (no command built, none cut)."""
        rows = [(n, " ".join(e.summary.split("\n\n")[0].split())) for n, e in self._entries().items()]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


__all__ = ["CONTEXT", "LazyGroup", "build_command", "metavar"]
