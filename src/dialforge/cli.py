"""The `dialforge` command: the app, error handling and exit codes. The commands themselves are
objects in `dialforge/commands/`, their options built from their configs."""

from __future__ import annotations

import logging
import sys

import typer

from .commands._adapter import backend_group, backend_overrides, executor_overrides, load_checked
from .commands._group import CONTEXT, LazyGroup
from .commands._output import err_console, out_console
from .errors import DialforgeError
from .llm.secrets import MaskSecretsFilter, mask_secrets

app = typer.Typer(
    cls=LazyGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings=CONTEXT,
    help="Multi-turn instructional dialogue data by simulating the user.",
)
_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        from ._version import __version__

        out_console.print(f"dialforge {__version__}", markup=False, highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug/--no-debug", help="show tracebacks and debug logs"),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="print the version"),
) -> None:
    _state["debug"] = debug
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.DEBUG if debug else logging.WARNING)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(MaskSecretsFilter())
    logging.getLogger().addHandler(handler)
    if debug:
        logging.getLogger().setLevel(logging.DEBUG)


def _click_errors() -> tuple[type[Exception], type[Exception]]:
    """(ClickException, UsageError) of the click that typer really runs on:
    typer >= 0.22 vendors it as `typer._click`, older typer uses `click`. `typer.BadParameter`
    is public in both and derives from both classes, so no private path is imported."""
    by_name = {c.__name__: c for c in typer.BadParameter.__mro__}
    return by_name["ClickException"], by_name["UsageError"]


_ClickException, _UsageError = _click_errors()


def _one_line(text: str) -> str:
    return mask_secrets(" ".join(text.split()))


def _usage_error(e: Exception) -> int:
    """A usage mistake as one line naming the command and where to find help; exit 2."""
    ctx = getattr(e, "ctx", None)
    if type(e).__name__ == "NoArgsIsHelpError" and ctx is not None:
        out_console.print(ctx.get_help(), markup=False, highlight=False)
        return 0
    where = ctx.command_path if ctx is not None else "dialforge" + (f" {_command()}" if _command() else "")
    msg = e.format_message() if hasattr(e, "format_message") else str(e)  # type: ignore[attr-defined]
    err_console.print(f"error: {where}: {_one_line(msg)} (see '{where} --help')", markup=False, highlight=False)
    return 2


def _command() -> str:
    """The subcommand on the command line (for messages raised before click knows it)."""
    from .commands.registry import entries

    names = set(entries())
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    return args[0] if args and args[0] in names else ""


def _interrupted() -> int:
    cmd = _command()
    from .commands.registry import resumable

    resume = " The same command resumes it; nothing already written is lost." if cmd in resumable() else ""
    err_console.print(f"interrupted: dialforge {cmd} stopped by Ctrl-C.{resume}", markup=False, highlight=False)
    return 130


def _run() -> int:
    try:
        rv = app(prog_name="dialforge", standalone_mode=False)
        if rv == 130:  # typer >= 0.22 turns KeyboardInterrupt into Exit(130) and returns its code
            return _interrupted()
        return rv if isinstance(rv, int) else 0
    except (KeyboardInterrupt, typer.Abort):  # click and older typer raise Abort on Ctrl-C
        return _interrupted()
    except typer.Exit as e:
        return int(getattr(e, "exit_code", 0) or 0)
    except DialforgeError as e:
        if _state["debug"]:
            raise
        err_console.print(f"error: {_one_line(str(e))}", markup=False, highlight=False)
        return 2
    except _UsageError as e:
        return _usage_error(e)
    except _ClickException as e:
        err_console.print(f"error: {_one_line(e.format_message())}", markup=False, highlight=False)  # type: ignore[attr-defined]
        return int(getattr(e, "exit_code", 1))
    except OSError as e:
        # the environment, not our code: a folder we may not write, a disk that is full
        if _state["debug"] or e.filename is None:
            raise
        err_console.print(f"error: {e.filename}: {e.strerror or e}", markup=False, highlight=False)
        return 2


def main() -> None:
    """Console entry point: user errors are one line and exit 2, Ctrl-C exits 130, never a traceback."""
    sys.exit(_run())


__all__ = ["app", "backend_group", "backend_overrides", "executor_overrides", "load_checked", "main"]


if __name__ == "__main__":
    main()
