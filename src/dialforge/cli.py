"""The `dialforge` command: a thin layer over the Python API."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click
import typer
from rich.console import Console
from rich.table import Table

from .errors import DialforgeError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Multi-turn instructional dialogue data by simulating the user.")
out_console = Console()
err_console = Console(stderr=True)
_state = {"debug": False}

OnErrorOpt = typer.Option("fail", "--on-error", help="fail on the first bad record, or skip and count")


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="show tracebacks")) -> None:
    _state["debug"] = debug
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def _check_on_error(v: str) -> Any:
    if v not in ("fail", "skip"):
        raise DialforgeError(f"--on-error must be fail or skip, not {v!r}")
    return v


def backend_overrides(prefix: str, model: str | None, base_url: str | None,
                      api_key_env: str | None) -> dict[str, Any]:
    """CLI flags for one role's backend, as dotted config overrides (`--base-url URL --model
    NAME` is an HTTP server, `--model PATH_OR_ID` alone the in-process backend)."""
    out: dict[str, Any] = {f"{prefix}.model": model, f"{prefix}.api_key_env": api_key_env}
    if base_url is not None:
        out[f"{prefix}.base_url"] = base_url
    return out


@app.command()
def convert(
    src: Path = typer.Argument(..., help="input file (or HF dataset folder)"),
    dst: Path = typer.Argument(..., help="output file (or folder for --to hf)"),
    from_: str = typer.Option("auto", "--from", help="auto|openai|sharegpt|oasst|oasst-best|hf"),
    to: str = typer.Option("openai", "--to", help="openai|sharegpt|hf"),
    on_error: str = OnErrorOpt,
    require_alternation: bool = typer.Option(False, help="reject records whose roles do not alternate"),
) -> None:
    """Convert between dialogue formats (canonical: OpenAI messages JSONL)."""
    from .io import ReadReport, read_conversations, write_conversations

    report = ReadReport(path=str(src))
    convs = read_conversations(src, from_, on_error=_check_on_error(on_error), report=report,
                               require_alternation=require_alternation)
    n = write_conversations(convs, dst, to)
    for e in report.skipped:
        err_console.print(f"skipped: {e}", markup=False, highlight=False)
    err_console.print(f"{report.summary()} ({report.format}) -> {n} written to {dst} ({to})",
                      markup=False, highlight=False)


@app.command()
def stats(
    path: Path = typer.Argument(..., help="dialogue file"),
    from_: str = typer.Option("auto", "--from"),
    on_error: str = OnErrorOpt,
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
    tokenizer: str | None = typer.Option(None, help="count tokens with this HF tokenizer (path)"),
) -> None:
    """Conversations, turns, characters/tokens per role, role-order problems."""
    from .io import ReadReport, read_conversations
    from .stats import conversation_stats

    report = ReadReport(path=str(path))
    convs = read_conversations(path, from_, on_error=_check_on_error(on_error), report=report)
    counter = None
    if tokenizer:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(tokenizer)

        def counter(s: str) -> int:
            return len(tok(s, add_special_tokens=False)["input_ids"])

    s = conversation_stats(convs, counter)
    s["skipped_records"] = len(report.skipped)
    if as_json:
        out_console.print_json(json.dumps(s))
        return
    t = Table(title=f"{path} ({report.format})")
    t.add_column("role")
    for col in ("messages", "chars", "tokens", "mean chars"):
        t.add_column(col, justify="right")
    for role, r in s["per_role"].items():
        t.add_row(role, str(r["messages"]), str(r["chars"]), str(r["tokens"]), str(r["mean_chars"]))
    out_console.print(t)
    u = s["user_turns_per_conversation"]
    out_console.print(f"conversations: {s['conversations']}  user turns/conv: mean {u['mean']} "
                      f"min {u['min']} median {u['median']} max {u['max']}  "
                      f"skipped records: {s['skipped_records']}")
    out_console.print(f"role-order problems: {s['conversations_with_problems']} conversations "
                      f"{s['role_order_problems']}")


@app.command()
def answer(
    prompts: list[Path] = typer.Option(None, "--prompts", help="question files (JSONL strings/objects or text)"),
    out: Path = typer.Option(..., "--out", help="run directory"),
    config: Path | None = typer.Option(None, "--config", help="YAML AnswerConfig"),
    model: str | None = typer.Option(None, "--model", help="model name (with --base-url) or local path/hub id"),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible server URL"),
    api_key_env: str | None = typer.Option(None, "--api-key-env", help="env var holding the API key"),
    limit: int | None = typer.Option(None, help="only the first N questions"),
    no_cache: bool = typer.Option(False, "--no-cache", help="bypass the call cache"),
    force_new: bool = typer.Option(False, "--force-new", help="move an old run with another config aside"),
) -> None:
    """Answer seed questions with one backend (first exchanges for seeded simulation)."""
    from .answer import AnswerConfig
    from .answer import answer as run_answer
    from .config import load_config

    ov = backend_overrides("assistant", model, base_url, api_key_env)
    ov["prompts"] = [str(p) for p in prompts] if prompts else None
    ov["limit"] = limit
    cfg = load_config(AnswerConfig, config, ov)
    summary = run_answer(cfg, out, force_new=force_new, use_cache=not no_cache)
    err_console.print(f"{out}: {summary}", markup=False, highlight=False)


def main() -> None:
    try:
        app(standalone_mode=False)
    except DialforgeError as e:
        if _state["debug"]:
            raise
        err_console.print(f"error: {e}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except click.exceptions.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)


if __name__ == "__main__":
    main()
