"""The `dialforge` command: a thin layer over the Python API."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from .config import field_help
from .errors import DialforgeError
from .llm.config import HTTPBackendConfig
from .llm.secrets import MaskSecretsFilter, mask_secrets
from .simulate.config import SimulateConfig

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Multi-turn instructional dialogue data by simulating the user.",
)
out_console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)
_state = {"debug": False}

OnErrorOpt = typer.Option("fail", "--on-error", help="fail on the first bad record, or skip and count")
StrictOpt = typer.Option(False, "--strict", help="exit 3 when the run ends with health warnings")
ExecutorOpt = typer.Option(None, "--executor", help="local (default) or ray: run the jobs in blocks on a Ray cluster")
RayAddressOpt = typer.Option(None, "--ray-address", help="with --executor ray: auto, HOST:PORT, or unset to start Ray")


def executor_overrides(kind: str | None, address: str | None) -> dict[str, Any]:
    """`--executor`/`--ray-address` as config overrides (the flags win over the YAML)."""
    if kind not in (None, "local", "ray"):
        raise DialforgeError(f"--executor must be local or ray, not {kind!r}")
    if kind is None and address is None:
        return {}
    return {"executor": {"kind": kind or "ray", "address": address}}


def _use_executor(kind: str | None, address: str | None) -> Any:
    """The same flags for commands whose config has no `executor`: every stage they run."""
    from .run.kernel import use_executor

    return use_executor(executor_overrides(kind, address).get("executor"))


def _finish(warnings: list[str], strict: bool) -> None:
    """Health warnings go last, where a user looks; `--strict` makes them an exit status."""
    for w in warnings:
        err_console.print(f"warning: {w}", markup=False, highlight=False)
    if strict and warnings:
        err_console.print(f"error: --strict: {len(warnings)} warning(s)", markup=False, highlight=False)
        sys.exit(3)


SetOpt = typer.Option(
    None,
    "--set",
    help="override any config field, repeatable: --set FIELD=VALUE, a dotted FIELD for nested ones "
    "(`dialforge run`: --set simulate.max_turns=6); values are YAML",
)
_MODEL_HELP = "model for every role: name (with --base-url) or local path / hub id"
_URL_HELP = "OpenAI-compatible server for every role (" + field_help(HTTPBackendConfig, "base_url") + ")"
_KEY_HELP = field_help(HTTPBackendConfig, "api_key_env")


def _version(value: bool) -> None:
    if value:
        from ._version import __version__

        out_console.print(f"dialforge {__version__}", markup=False, highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="show tracebacks"),
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


def _check_on_error(v: str) -> Any:
    if v not in ("fail", "skip"):
        raise DialforgeError(f"--on-error must be fail or skip, not {v!r}")
    return v


def backend_overrides(prefix: str, model: str | None, base_url: str | None, api_key_env: str | None) -> dict[str, Any]:
    """CLI flags for one role's backend, as dotted config overrides (`--base-url URL --model
    NAME` is an HTTP server, `--model PATH_OR_ID` alone the in-process backend, unless the
    config names a server for the role: then it is the name that server serves. An embedded
    model (`smollm2-135m`, `dialforge-tiny`) is never served, so its name alone always runs
    in-process)."""
    from .embedded import is_embedded

    if is_embedded(model) and base_url is None:  # replaces the role: its server fields go, its sampling stays
        from .config import RoleSwap

        return {prefix: RoleSwap(kind="transformers", model=model)}
    out: dict[str, Any] = {f"{prefix}.model": model, f"{prefix}.api_key_env": api_key_env}
    if base_url is not None:
        out[f"{prefix}.base_url"] = base_url
        out[f"{prefix}.kind"] = "http"
    return {k: v for k, v in out.items() if v is not None}


def backend_group(
    roles: tuple[str, ...], model: str | None, base_url: str | None, api_key_env: str | None, **per_role: Any
) -> dict[str, Any]:
    """The shared backend flags (`--model M --base-url URL` for every role, as in `run`), then
    each role's own flags (`user=(model, base_url)`) on top."""
    out: dict[str, Any] = {}
    for role in roles:
        out.update(backend_overrides(role, model, base_url, api_key_env))
        own_model, own_url = per_role.get(role, (None, None))
        out.update(backend_overrides(role, own_model, own_url, api_key_env))
    return out


def _tiny_note() -> None:
    from .tiny import TINY

    err_console.print(
        f"note: running on `{TINY}`, a tiny random model built on this machine, so the text is not "
        "meaningful; it shows every stage working offline. Point the same config at a real model "
        "with --base-url URL --model NAME (an OpenAI-compatible server) or --model /path/to/model.",
        markup=False,
        highlight=False,
    )


def load_checked(cls: Any, config: Path | None, overrides: dict[str, Any], sets: list[str] | None) -> Any:
    """A command's config: YAML, then flags, then `--set`; every input file checked now, so a
    typo fails before the first model call (file and field path, exit 2)."""
    from .config import config_origins, load_config, parse_set
    from .validate import check_inputs

    given = parse_set(sets)
    cfg = load_config(cls, config, overrides, given)
    if config is None:
        check_inputs(cfg, "command line")
    else:
        check_inputs(cfg, str(config), config_origins(overrides, given))
    from .tiny import uses_tiny

    if uses_tiny(cfg):
        _tiny_note()
    return cfg


FromOpt = typer.Option("auto", "--from", help="input format, or auto (by shape); `dialforge formats` lists them")


def _mapping(
    messages: str | None, role_field: str | None, content_field: str | None, roles: str | None, mapping: Path | None
) -> Any:
    """A field mapping from the flags (or a YAML file), or None when none was given."""
    from .io.mapping import load_mapping, make_mapping, parse_roles

    if mapping is not None:
        return load_mapping(mapping)
    if not any((messages, role_field, content_field, roles)):
        return None
    return make_mapping(
        messages=messages, role_field=role_field, content_field=content_field, roles=parse_roles(roles or "")
    )


@app.command()
def convert(
    src: Path = typer.Argument(..., help="input file (or HF dataset folder)"),
    dst: Path = typer.Argument(..., help="output file (or folder for --to hf)"),
    from_: str = FromOpt,
    to: str = typer.Option("openai", "--to", help="openai|sharegpt|hf"),
    on_error: str = OnErrorOpt,
    require_alternation: bool = typer.Option(False, help="reject records whose roles do not alternate"),
    dedup_ids: bool = typer.Option(False, "--dedup-ids", help="keep only the first record of each id"),
    messages: str | None = typer.Option(None, "--messages", help="mapping: field holding the turns"),
    role_field: str | None = typer.Option(None, "--role-field", help="mapping: turn field holding the role"),
    content_field: str | None = typer.Option(None, "--content-field", help="mapping: turn field holding the text"),
    roles: str | None = typer.Option(None, "--roles", help="mapping: e.g. human=user,gpt=assistant"),
    mapping: Path | None = typer.Option(None, "--mapping", help="mapping YAML (messages, role_field, ...)"),
) -> None:
    """Convert between dialogue formats (canonical: OpenAI messages JSONL), streaming."""
    from .io import ReadReport, iter_conversations, write_conversations

    report = ReadReport(path=str(src))
    convs = iter_conversations(
        src,
        from_,
        on_error=_check_on_error(on_error),
        report=report,
        require_alternation=require_alternation,
        dedup_ids=dedup_ids,
        mapping=_mapping(messages, role_field, content_field, roles, mapping),
    )
    n = write_conversations(convs, dst, to)
    _print_skips(report)
    err_console.print(
        f"{report.summary()} ({report.format}) -> {n} written to {dst} ({to})", markup=False, highlight=False
    )


def _print_skips(report: Any, shown: int = 5) -> None:
    for e in report.skipped[:shown]:
        err_console.print(f"skipped: {e}", markup=False, highlight=False)
    if report.n_skipped > shown:
        err_console.print(f"skipped: ... and {report.n_skipped - shown} more", markup=False, highlight=False)


@app.command()
def formats() -> None:
    """Every reader and writer: name, read/write/seeds, the shape it takes."""
    from .io.registry import describe

    rows = describe()
    width = max(len(n) for n, _, _ in rows)
    for name, kinds, desc in rows:
        out_console.print(f"{name:<{width}}  {kinds:<16} {desc}", markup=False, highlight=False)


@app.command()
def seeds(
    src: Path = typer.Argument(..., help="seed file: text lines, JSONL/JSON of prompts, or any dialogue file"),
    out: Path | None = typer.Option(None, "--out", help="write the prompts here as JSONL {text}"),
    text_field: str | None = typer.Option(None, "--text-field", help="field holding the prompt (dotted)"),
    on_error: str = OnErrorOpt,
) -> None:
    """Read seed prompts as simulate/answer will, and say how many (optionally write them out)."""
    import orjson

    from .io import ReadReport, read_seeds
    from .io.reader import atomic_write_bytes

    report = ReadReport(path=str(src))
    texts = read_seeds(src, text_field=text_field, on_error=_check_on_error(on_error), report=report)
    if out is not None:
        atomic_write_bytes(out, b"".join(orjson.dumps({"text": t}) + b"\n" for t in texts))
    _print_skips(report)
    skipped = f", {report.n_skipped} bad records skipped" if report.n_skipped else ""
    if report.not_openings:
        skipped += f", {report.not_openings} answers and in-thread replies left out"
    dest = f" -> {out}" if out else ""
    err_console.print(
        f"{src}: {len(texts)} seed prompts from {report.records} records ({report.format}){skipped}{dest}",
        markup=False,
        highlight=False,
    )


@app.command()
def stats(
    path: Path = typer.Argument(..., help="dialogue file"),
    from_: str = FromOpt,
    on_error: str = OnErrorOpt,
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
    tokenizer: str | None = typer.Option(
        None, help="count tokens with this HF tokenizer (path, hub id or dialforge-tiny); else whitespace words"
    ),
) -> None:
    """Conversations, turns, characters and words (or tokens) per role, role-order problems."""
    from .io import ReadReport
    from .io.reader import iter_conversations
    from .stats import conversation_stats, plural, tokenizer_counter

    report = ReadReport(path=str(path))
    counter = tokenizer_counter(tokenizer) if tokenizer else None
    s = conversation_stats(iter_conversations(path, from_, on_error=_check_on_error(on_error), report=report), counter)
    s["skipped_records"] = report.n_skipped
    s["duplicate_ids"] = report.duplicates
    if as_json:
        out_console.print_json(json.dumps(s))
        return
    unit = s["length_unit"]
    t = Table(title=f"{path} ({report.format})")
    t.add_column("role")
    for col in ("messages", "chars", unit, "mean chars"):
        t.add_column(col, justify="right")
    for role, r in s["per_role"].items():
        t.add_row(role, str(r["messages"]), str(r["chars"]), str(r[unit]), str(r["mean_chars"]))
    out_console.print(t)
    u = s["user_turns_per_conversation"]
    out_console.print(
        f"{plural(s['conversations'], 'conversation')}; user turns per conversation: mean {u['mean']} "
        f"min {u['min']} median {u['median']} max {u['max']}; {plural(s['skipped_records'], 'skipped record')}; "
        f"{plural(s['duplicate_ids'], 'duplicate id')}"
    )
    out_console.print(
        f"role-order problems: {plural(s['conversations_with_problems'], 'conversation')} {s['role_order_problems']}"
    )


@app.command()
def answer(
    prompts: list[Path] = typer.Option(None, "--prompts", help="question files (JSONL strings/objects or text)"),
    out: Path = typer.Option(..., "--out", help="run directory"),
    text_field: str | None = typer.Option(None, "--text-field", help="field of the records holding the prompt"),
    config: Path | None = typer.Option(None, "--config", help="YAML AnswerConfig"),
    model: str | None = typer.Option(None, "--model", help="model name (with --base-url) or local path/hub id"),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible server URL"),
    api_key_env: str | None = typer.Option(None, "--api-key-env", help="env var holding the API key"),
    limit: int | None = typer.Option(None, help="only the first N questions"),
    no_cache: bool = typer.Option(False, "--no-cache", help="bypass the call cache"),
    force_new: bool = typer.Option(False, "--force-new", help="move an old run with another config aside"),
    strict: bool = StrictOpt,
    set_: list[str] = SetOpt,
    executor: str | None = ExecutorOpt,
    ray_address: str | None = RayAddressOpt,
) -> None:
    """Answer seed questions with one backend (first exchanges for seeded simulation)."""
    from .answer import AnswerConfig
    from .answer import answer as run_answer

    ov = backend_overrides("assistant", model, base_url, api_key_env)
    ov["prompts"] = [str(p) for p in prompts] if prompts else None
    ov["text_field"] = text_field
    ov["limit"] = limit
    ov.update(executor_overrides(executor, ray_address))
    cfg = load_checked(AnswerConfig, config, ov, set_)
    summary = run_answer(cfg, out, force_new=force_new, use_cache=not no_cache)
    warnings = summary.pop("warnings", [])
    err_console.print(
        f"{out}: {summary['total']} of {summary['questions']} questions answered "
        f"({summary['answered_now']} now, {summary['already_done']} before, {summary['failed']} failed)",
        markup=False,
        highlight=False,
    )
    _finish(warnings, strict)


@app.command()
def induce(
    dialogues: list[Path] = typer.Option(None, "--dialogues", help="real dialogue files (any format)"),
    out: Path = typer.Option(..., "--out", help="run directory"),
    config: Path | None = typer.Option(None, "--config", help="YAML InduceConfig"),
    model: str | None = typer.Option(None, "--model", help="model name (with --base-url) or local path/hub id"),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible server URL"),
    api_key_env: str | None = typer.Option(None, "--api-key-env", help="env var holding the API key"),
    embedder: str | None = typer.Option(None, "--embedder", help="sentence-transformers model id or path"),
    threshold: float | None = typer.Option(None, help="cosine threshold for clustering (0.5)"),
    method: str | None = typer.Option(None, help="butina (default), components, or leader (published)"),
    from_: str | None = typer.Option(None, "--from", help="input format (auto)"),
    on_error: str | None = typer.Option(None, "--on-error", help="fail|skip bad records"),
    max_dialogues: int | None = typer.Option(None, help="use only the first N dialogues"),
    no_cache: bool = typer.Option(False, "--no-cache"),
    force_new: bool = typer.Option(False, "--force-new"),
    strict: bool = StrictOpt,
    set_: list[str] = SetOpt,
    executor: str | None = ExecutorOpt,
    ray_address: str | None = RayAddressOpt,
) -> None:
    """IDEAS induction: filter, extract, embed, cluster, abstract -> RUN_DIR/library.json."""
    from .induce import InduceConfig
    from .induce import induce as run_induce

    ov = backend_overrides("model", model, base_url, api_key_env)
    ov.update(
        {
            "dialogues": [str(p) for p in dialogues] if dialogues else None,
            "embedder": embedder,
            "threshold": threshold,
            "method": method,
            "format": from_,
            "on_error": on_error,
            "max_dialogues": max_dialogues,
            **executor_overrides(executor, ray_address),
        }
    )
    cfg = load_checked(InduceConfig, config, ov, set_)
    lib = run_induce(cfg, out, force_new=force_new, use_cache=not no_cache)
    from .stats import plural

    c = lib.counts
    dropped = ", ".join(f"{n} {why}" for why, n in (c.get("dropped") or {}).items())
    err_console.print(
        f"{out}/library.json: {plural(len(lib.strategies), 'strategy', 'strategies')} from "
        f"{plural(c.get('extracted', 0), 'extracted strategy', 'extracted strategies')}; "
        f"{c.get('dialogues_kept')} of {c.get('dialogues_read')} dialogues kept"
        f"{f' ({dropped} dropped)' if dropped else ''}, {plural(c.get('distinct_turns', 0), 'distinct user turn')}",
        markup=False,
        highlight=False,
    )
    from .run.health import run_warnings

    _finish(run_warnings(out), strict)


@app.command()
def simulate(
    config: Path = typer.Option(..., "--config", help="YAML SimulateConfig (see examples/)"),
    out: Path = typer.Option(..., "--out", help="run directory"),
    model: str | None = typer.Option(None, "--model", help=_MODEL_HELP),
    base_url: str | None = typer.Option(None, "--base-url", help=_URL_HELP),
    user_model: str | None = typer.Option(None, "--user-model", help="user simulator model (overrides --model)"),
    user_base_url: str | None = typer.Option(None, "--user-base-url"),
    assistant_model: str | None = typer.Option(None, "--assistant-model", help="assistant model (overrides --model)"),
    assistant_base_url: str | None = typer.Option(None, "--assistant-base-url"),
    api_key_env: str | None = typer.Option(None, "--api-key-env", help=_KEY_HELP),
    limit: int | None = typer.Option(None, help=field_help(SimulateConfig, "seeds.limit")),
    text_field: str | None = typer.Option(None, "--text-field", help="field of the seed records holding the prompt"),
    no_cache: bool = typer.Option(False, "--no-cache"),
    force_new: bool = typer.Option(False, "--force-new"),
    strict: bool = StrictOpt,
    set_: list[str] = SetOpt,
    executor: str | None = ExecutorOpt,
    ray_address: str | None = RayAddressOpt,
) -> None:
    """Self-play: a user simulator (strategy | socratic | persona) talks with an assistant."""
    from .simulate import simulate as run_simulate

    ov = backend_group(
        ("user", "assistant"),
        model,
        base_url,
        api_key_env,
        user=(user_model, user_base_url),
        assistant=(assistant_model, assistant_base_url),
    )
    ov["seeds.limit"] = limit
    ov["seeds.text_field"] = text_field
    ov.update(executor_overrides(executor, ray_address))
    cfg = load_checked(SimulateConfig, config, ov, set_)
    summary = run_simulate(cfg, out, force_new=force_new, use_cache=not no_cache)
    warnings = summary.pop("warnings", [])
    from .stats import plural

    n, now, again = summary["conversations"], summary["new"], summary["retried"]
    retried = f", {again} of them retrying failed ones" if again else ""
    reasons = ", ".join(f"{k} {v}" for k, v in summary["termination_reasons"].items()) or "-"
    err_console.print(
        f"{out}/conversations.jsonl: {plural(n, 'conversation')} ({now} run now{retried}; {n - now} from before); "
        f"ended on: {reasons}",
        markup=False,
        highlight=False,
    )
    _finish(warnings, strict)


@app.command()
def modes() -> None:
    """The registered simulator modes (simulate/modes.py) and the commands that offer them."""
    from .simulate.modes import MODES

    t = Table(title="simulator modes")
    for col in ("mode", "commands", "description"):
        t.add_column(col)
    for m in MODES.values():
        t.add_row(m.name, ", ".join(m.commands), m.description)
    out_console.print(t)


@app.command()
def train(
    kind: str = typer.Argument(..., help="simulator (loss on user turns) or chat (loss on assistant turns)"),
    data: list[Path] = typer.Option(None, "--data", help="dialogue files (any format) or labelled IDEAS records"),
    model: str | None = typer.Option(None, "--model", help="base model: local path or hub id"),
    out: Path | None = typer.Option(None, "--out", help="output directory (final/ loads as a model)"),
    config: Path | None = typer.Option(None, "--config", help="YAML TrainConfig"),
    template: str | None = typer.Option(None, help="auto, chatml, llama3, vicuna, dyadic"),
    preset: str | None = typer.Option(
        None, help="default, platolm (full FT, 2e-5 cosine, 128/step) or selftalk (LoRA r64, 5e-4, inverse sqrt)"
    ),
    full: bool = typer.Option(False, "--full", help="full fine-tuning instead of LoRA"),
    packing: bool | None = typer.Option(None, "--packing/--no-packing"),
    strategy_conditioned: bool = typer.Option(
        False, "--strategy-conditioned", help="data are `strategies assign` output (IDEAS simulator)"
    ),
    epochs: float | None = typer.Option(None),
    max_steps: int | None = typer.Option(None),
    learning_rate: float | None = typer.Option(None, "--lr"),
    batch_size: int | None = typer.Option(None),
    max_length: int | None = typer.Option(None),
    set_: list[str] = SetOpt,
) -> None:
    """Role-masked SFT (TRL + PEFT LoRA). Multi-GPU: `accelerate launch --config_file
    configs/accelerate/... -m dialforge.cli train ...`."""
    from .train import TrainConfig
    from .train import train as run_train

    if kind not in ("simulator", "chat"):
        raise DialforgeError(f"train: kind must be simulator or chat, not {kind!r}")
    ov: dict[str, Any] = {
        "kind": kind,
        "data": [str(p) for p in data] if data else None,
        "model": model,
        "out": str(out) if out else None,
        "template": template,
        "preset": preset,
        "packing": packing,
        "epochs": epochs,
        "max_steps": max_steps,
        "learning_rate": learning_rate,
        "batch_size": batch_size,
        "max_length": max_length,
    }
    if full:
        ov["lora"] = False
    if strategy_conditioned:
        ov["strategy_conditioned"] = True
    cfg = load_checked(TrainConfig, config, ov, set_)
    summary = run_train(cfg)
    losses, mean = summary["losses"], summary.get("train_loss")
    if len(losses) > 1:
        loss = f"loss {losses[0]:.4f} -> {losses[-1]:.4f} (logged every {cfg.logging_steps} steps)"
    else:  # fewer steps than logging_steps: the trainer's mean is the one figure
        loss = f"mean loss {mean:.4f}" if isinstance(mean, (int, float)) else "no loss logged"
    err_console.print(
        f"{summary['final']}: {summary['examples']} examples, {summary['steps']} steps, {loss}",
        markup=False,
        highlight=False,
    )


@app.command()
def score(
    path: Path = typer.Argument(..., help="conversation file or run directory"),
    judge_model: str | None = typer.Option(None, "--judge-model", help="LLM judge for question quality"),
    judge_base_url: str | None = typer.Option(None, "--judge-base-url"),
    api_key_env: str | None = typer.Option(None, "--api-key-env"),
    library: str | None = typer.Option(None, help="strategy library (coverage in strategy mode)"),
    no_embedding: bool = typer.Option(False, "--no-embedding", help="skip embedding diversity"),
    config: Path | None = typer.Option(None, "--config", help="YAML ScoreConfig"),
    set_: list[str] = SetOpt,
    on_error: str = OnErrorOpt,
    executor: str | None = ExecutorOpt,
    ray_address: str | None = RayAddressOpt,
) -> None:
    """Metrics per conversation and per dataset, written beside the data."""
    from .score import ScoreConfig
    from .score import score as run_score
    from .score.scoring import locate

    ov: dict[str, Any] = {"library": library}
    if judge_model:
        ov.update(backend_overrides("judge", judge_model, judge_base_url, api_key_env))
    if no_embedding:
        ov["embedder"] = None
    cfg = load_checked(ScoreConfig, config, {k: v for k, v in ov.items() if v is not None}, set_)
    if no_embedding:
        cfg.embedder = None
    with _use_executor(executor, ray_address):
        summary = run_score(path, cfg, on_error=_check_on_error(on_error))
    _, per, summ = locate(path)
    out_console.print_json(json.dumps(summary))
    err_console.print(f"wrote {per} and {summ}", markup=False, highlight=False)


@app.command("metrics")
def metrics_cmd(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """The registered metrics: name, level, direction (higher/lower is better), range; every
    conversation-level name can be used in `filter --where`."""
    from .score.registry import metrics

    ms = metrics()
    if as_json:
        rows = [
            {"name": m.name, "level": m.level, "direction": m.direction, "range": m.range, "description": m.description}
            for m in ms
        ]
        out_console.print_json(json.dumps(rows))
        return
    t = Table()
    for col in ("name", "level", "better", "range", "description"):
        t.add_column(col)
    for m in ms:
        rng = "" if m.range is None else f"[{m.range[0]}, {'' if m.range[1] is None else m.range[1]}]"
        t.add_row(m.name, m.level, m.direction, rng, m.description)
    out_console.print(t, markup=False, highlight=False)


@app.command("filter")
def filter_cmd(
    path: Path = typer.Argument(..., help="conversation file or run directory"),
    where: str = typer.Option(..., "--where", help="e.g. 'user_turns >= 3 and termination_reason != \"error\"'"),
    out: Path = typer.Option(..., "--out", help="output JSONL"),
    scores: Path | None = typer.Option(None, help="scores JSONL (default: the one `score` wrote beside the data)"),
    on_error: str = OnErrorOpt,
) -> None:
    """Keep the conversations for which an expression over scores and meta is true."""
    from .score import filter_file
    from .score.scoring import locate

    data, scores_path, _ = locate(path)
    kept, read = filter_file(data, where, out, scores or scores_path, on_error=_check_on_error(on_error))
    err_console.print(f"{out}: kept {kept} of {read} ({where})", markup=False, highlight=False)


@app.command("dedup")
def dedup_cmd(
    path: Path = typer.Argument(..., help="conversation file or run directory"),
    out: Path = typer.Option(..., "--out", help="output JSONL (a .removed.jsonl report goes beside it)"),
    near: float | None = typer.Option(0.8, min=0.0, max=1.0, help="MinHash Jaccard threshold (0 to disable)"),
    embedding: float | None = typer.Option(
        None, min=0.0, max=1.0, help="cosine threshold for embedding dedup (unset or 0: off)"
    ),
    on_error: str = OnErrorOpt,
) -> None:
    """Exact, near-duplicate (MinHash) and embedding dedup, reporting what was removed and why."""
    from collections import Counter

    from .score import dedup_file
    from .score.scoring import locate

    data, _, _ = locate(path)
    report = out.with_name(out.name.rsplit(".", 1)[0] + ".removed.jsonl")
    kept, read, removed = dedup_file(
        data, out, report, near=near or None, embedding=embedding or None, on_error=_check_on_error(on_error)
    )
    why = Counter(r["reason"].split(" (")[0].split(" cosine")[0] for r in removed)
    gone = ", ".join(f"{n} {reason}" for reason, n in why.most_common()) or "none"
    err_console.print(f"{out}: kept {kept} of {read}; removed {gone}; report {report}", markup=False, highlight=False)


@app.command("export")
def export_cmd(
    path: Path = typer.Argument(..., help="conversation file, simulator folder or `dialforge run` directory"),
    to: str = typer.Option(..., "--to", help="openai | trl | sharegpt | llamafactory | hf"),
    out: Path = typer.Option(
        ..., "--out", help="file (folder for hf / llamafactory); for a run with several simulators, a folder"
    ),
    name: str = typer.Option("dialforge", help="dataset name (llamafactory dataset_info.json entry)"),
    on_error: str = OnErrorOpt,
) -> None:
    """Export for a training framework, each output checked by that framework's rules. A run
    directory exports each simulator's final (filtered, deduplicated) conversations."""
    from .score.export import export_file_result, export_sources, export_target

    sources = export_sources(path)
    for src in sources:
        target = out if len(sources) == 1 else export_target(out, src.name, to)
        dataset = name if len(sources) == 1 else src.name
        r = export_file_result(src.path, to, target, dataset, on_error=_check_on_error(on_error))
        err_console.print(f"{src.describe()}: {r.summary()}", markup=False, highlight=False)


@app.command("check")
def check_cmd(
    path: Path = typer.Argument(..., help="exported file (a dataset folder for llamafactory and hf)"),
    for_: str = typer.Option(..., "--for", help="openai | trl | llamafactory | hf"),
) -> None:
    """Check a file by a training consumer's own rules: one line per problem (file:line, field),
    exit 2 on any."""
    from .io.check import check

    problems, n = check(path, for_)
    for p in problems:
        out_console.print(str(p), markup=False, highlight=False)
    if n:
        more = f" ({len(problems)} listed)" if n > len(problems) else ""
        err_console.print(f"error: {path}: {n} problems for {for_}{more}", markup=False, highlight=False)
        sys.exit(2)
    err_console.print(f"{path}: 0 problems for {for_}", markup=False, highlight=False)


eval_app = typer.Typer(no_args_is_help=True, help="Judged benchmarks.")
app.add_typer(eval_app, name="eval")

_PACKAGE = Path(__file__).resolve().parent  # data/ and examples/ ship inside the package
_DATA = _PACKAGE / "data" / "fastchat"


@eval_app.command("mt-bench")
def eval_mt_bench(
    out: Path = typer.Option(..., "--out", help="run directory"),
    model: str = typer.Option(..., "--model", help="answering model"),
    base_url: str | None = typer.Option(None, "--base-url"),
    judge: str = typer.Option(..., "--judge", help="judge model"),
    judge_base_url: str | None = typer.Option(None, "--judge-base-url"),
    api_key_env: str | None = typer.Option(None, "--api-key-env"),
    mode: str = typer.Option("single", help="single or pairwise"),
    baseline_answers: Path | None = typer.Option(None, help="FastChat answer file to compare with (pairwise)"),
    questions: Path = typer.Option(_DATA / "mt_bench/question.jsonl", help="MT-Bench questions"),
    reference_answers: Path | None = typer.Option(_DATA / "mt_bench/reference_answer/gpt-4.jsonl"),
    judge_prompts: Path = typer.Option(_DATA / "judge_prompts.jsonl"),
    force_new: bool = typer.Option(False, "--force-new"),
    strict: bool = StrictOpt,
    set_: list[str] = SetOpt,
    executor: str | None = ExecutorOpt,
    ray_address: str | None = RayAddressOpt,
) -> None:
    r"""MT-Bench: answers from any backend, FastChat judge prompts, \[\[rating]] parsing."""
    from .score.mtbench import MTBenchConfig, mt_bench

    ov = {
        **backend_overrides("model", model, base_url, api_key_env),
        **backend_overrides("judge", judge, judge_base_url, api_key_env),
        "mode": mode,
        "baseline_answers": str(baseline_answers) if baseline_answers else None,
        "questions": str(questions),
        "reference_answers": str(reference_answers) if reference_answers else None,
        "judge_prompts": str(judge_prompts),
        **executor_overrides(executor, ray_address),
    }
    cfg = load_checked(MTBenchConfig, None, ov, set_)
    summary = mt_bench(cfg, out, force_new=force_new)
    warnings = summary.pop("warnings", [])
    if mode == "single":
        t = Table(title=f"MT-Bench {model} (judge {judge})")
        t.add_column("category")
        t.add_column("score", justify="right")
        for c, v in summary["categories"].items():
            t.add_row(c, f"{v:.2f}")
        for turn, v in summary["turns"].items():
            t.add_row(f"turn {turn}", f"{v:.2f}")
        t.add_row("overall", f"{summary['mean']:.2f}" if summary["mean"] is not None else "-")
        out_console.print(t)
        out_console.print(f"judged {summary['judged']}, unparsed {summary['unparsed']}")
    else:
        out_console.print_json(json.dumps(summary))
    _finish(warnings, strict)


workflows_app = typer.Typer(no_args_is_help=True, help="Workflow graphs for self-talk.")
app.add_typer(workflows_app, name="workflows")


@workflows_app.command("show")
def workflows_show(path: Path = typer.Argument(..., help="workflow YAML file or folder")) -> None:
    """Validate and draw workflows as text."""
    from .workflows import draw, load_workflows

    for wf in load_workflows(path):
        out_console.print(draw(wf), markup=False, highlight=False)
        out_console.print()


@workflows_app.command("import")
def workflows_import(
    kind: str = typer.Argument(..., help="star, abcd or sgd (SGD and MultiWOZ 2.2 schemas)"),
    src: Path = typer.Argument(
        ..., help="STAR tasks/ folder, ABCD guidelines.json, or an SGD/MultiWOZ 2.2 schema.json"
    ),
    out: Path = typer.Argument(..., help="output folder of workflow YAML files"),
    dialogues: list[Path] = typer.Option(
        None, "--dialogues", help="sgd: dialogue files whose slot values seed intents"
    ),
    intents_per_workflow: int = typer.Option(5, help="sgd: client intents sampled per workflow (OUT/intents.json)"),
) -> None:
    """Import workflows from real schemas; every task imports or is reported with its reason."""
    from .workflows import import_abcd, import_star, write_workflows

    if kind not in ("star", "abcd", "sgd"):
        raise DialforgeError(f"workflows import: kind must be star, abcd or sgd, not {kind!r}")
    note = ""
    if kind == "sgd":
        import orjson

        from .io.reader import atomic_write_bytes
        from .workflows.sgd import import_sgd

        wfs, failed, intents = import_sgd(
            src, dialogues=list(dialogues or []), intents_per_workflow=intents_per_workflow
        )
        write_workflows(wfs, out)
        atomic_write_bytes(out / "intents.json", orjson.dumps(intents, option=orjson.OPT_INDENT_2))
        note = f"; client intents in {out / 'intents.json'} (selftalk --intents)"
    else:
        wfs, failed = import_star(src) if kind == "star" else import_abcd(src)
        write_workflows(wfs, out)
    err_console.print(f"{out}: {len(wfs)} workflows imported, {len(failed)} not{note}", markup=False, highlight=False)
    for name, why in failed.items():
        err_console.print(f"  not imported: {name}: {why}", markup=False, highlight=False)


@app.command()
def selftalk(
    config: Path = typer.Option(..., "--config", help="YAML SelfTalkConfig"),
    out: Path = typer.Option(..., "--out", help="run directory"),
    workflows: Path | None = typer.Option(None, "--workflows", help="workflow folder or file"),
    loops: int | None = typer.Option(None, "--loops", help="generate -> filter -> train rounds"),
    model: str | None = typer.Option(None, "--model", help=_MODEL_HELP),
    base_url: str | None = typer.Option(None, "--base-url", help=_URL_HELP),
    agent_model: str | None = typer.Option(None, "--agent-model", help="agent model (overrides --model)"),
    agent_base_url: str | None = typer.Option(None, "--agent-base-url"),
    client_model: str | None = typer.Option(None, "--client-model", help="client model (overrides --model)"),
    client_base_url: str | None = typer.Option(None, "--client-base-url"),
    api_key_env: str | None = typer.Option(None, "--api-key-env", help=_KEY_HELP),
    intents: Path | None = typer.Option(
        None, "--intents", help="client intents: a dialogue file with goals, intents.json, or one intent per line"
    ),
    force_new: bool = typer.Option(False, "--force-new"),
    strict: bool = StrictOpt,
    set_: list[str] = SetOpt,
    executor: str | None = ExecutorOpt,
    ray_address: str | None = RayAddressOpt,
) -> None:
    """Self-talk for workflow-following agents: client/agent loop, subgoal metric, filters, training."""
    from .workflows import SelfTalkConfig
    from .workflows import selftalk as run_selftalk

    ov = backend_group(
        ("agent", "client"),
        model,
        base_url,
        api_key_env,
        agent=(agent_model, agent_base_url),
        client=(client_model, client_base_url),
    )
    ov.update(
        {
            "workflows": str(workflows) if workflows else None,
            "loops": loops,
            "intents_file": str(intents) if intents else None,
        }
    )
    ov.update(executor_overrides(executor, ray_address))
    cfg = load_checked(SelfTalkConfig, config, ov, set_)
    summary = run_selftalk(cfg, out, force_new=force_new)
    warnings = summary.pop("warnings", [])
    out_console.print_json(json.dumps(summary))
    _finish(warnings, strict)


@app.command("agent")
def agent_cmd(
    config: Path = typer.Option(..., "--config", help="YAML AgentToolsConfig (see examples/agent_tools.yaml)"),
    out: Path = typer.Option(..., "--out", help="run directory"),
    model: str | None = typer.Option(None, "--model", help=_MODEL_HELP),
    base_url: str | None = typer.Option(None, "--base-url", help=_URL_HELP),
    agent_model: str | None = typer.Option(None, "--agent-model", help="agent model (overrides --model)"),
    agent_base_url: str | None = typer.Option(None, "--agent-base-url"),
    user_model: str | None = typer.Option(None, "--user-model", help="customer simulator model (overrides --model)"),
    user_base_url: str | None = typer.Option(None, "--user-base-url"),
    api_key_env: str | None = typer.Option(None, "--api-key-env", help=_KEY_HELP),
    samples: int | None = typer.Option(None, "--samples", help="conversations per goal (k of pass^k)"),
    force_new: bool = typer.Option(False, "--force-new"),
    strict: bool = StrictOpt,
    set_: list[str] = SetOpt,
) -> None:
    """Agentic self-talk: a tool-calling agent on STAR's APIs and databases, a customer with a hidden goal,
    success checked on the final database state; verified successes exported for function-calling training."""
    ov = backend_group(
        ("agent", "user"),
        model,
        base_url,
        api_key_env,
        agent=(agent_model, agent_base_url),
        user=(user_model, user_base_url),
    )
    ov["samples"] = samples
    _run_agent(config, out, ov, set_, force_new=force_new, strict=strict)


def _is_agent_config(config: Path) -> bool:
    """A YAML with `agent` and `user` roles and no `simulate` section: an AgentToolsConfig (so
    `dialforge run examples/agent_tools.yaml` runs it)."""
    from .config import read_yaml

    try:
        data = read_yaml(config)
    except Exception:  # the pipeline's loader reports a broken file with its line
        return False
    return isinstance(data, dict) and "simulate" not in data and {"agent", "user"} <= set(data)


def _run_agent(
    config: Path, out: Path, ov: dict[str, Any], sets: list[str] | None, *, force_new: bool, strict: bool
) -> None:
    from .agentic import AgentToolsConfig, agentic

    cfg = load_checked(AgentToolsConfig, config, ov, sets)
    summary = agentic(cfg, out, force_new=force_new)
    warnings = summary.pop("warnings", [])
    for task, row in summary["tasks"].items():
        err_console.print(
            f"{task}: {row['conversations']} conversations, success {row['success']}, pass^1 {row['pass^1']}, "
            f"partial {row['partial_credit']}, {row['tool_calls']} calls ({row['tool_errors']} tool errors), "
            f"simulator errors {row['simulator_error_rate']}",
            markup=False,
            highlight=False,
        )
    out_console.print_json(json.dumps(summary))
    _finish(warnings, strict)


@app.command("run")
def run_cmd(
    config: Path = typer.Argument(..., help="pipeline YAML (see examples/quickstart.yaml)"),
    out: Path | None = typer.Option(None, "--out", help="run directory (default runs/<config name>)"),
    model: str | None = typer.Option(None, "--model", help=_MODEL_HELP),
    base_url: str | None = typer.Option(None, "--base-url", help=_URL_HELP),
    api_key_env: str | None = typer.Option(None, "--api-key-env", help=_KEY_HELP),
    set_: list[str] = SetOpt,
    executor: str | None = ExecutorOpt,
    ray_address: str | None = RayAddressOpt,
    force_new: bool = typer.Option(False, "--force-new", help="a changed config: move the old run aside, start anew"),
    strict: bool = StrictOpt,
) -> None:
    """The whole job from one YAML: induce -> simulate -> score -> filter -> dedup -> export -> realism -> train
    -> report."""
    if _is_agent_config(config):  # agentic self-talk (examples/agent_tools.yaml)
        ov = backend_group(("agent", "user"), model, base_url, api_key_env)
        _run_agent(config, out or Path("runs") / config.stem, ov, set_, force_new=force_new, strict=strict)
        return
    ov = backend_overrides("model", model, base_url, api_key_env)
    ov.update(executor_overrides(executor, ray_address))
    _run_pipeline(config, out, ov, set_, force_new=force_new, strict=strict)


def _run_pipeline(
    config: Path,
    out: Path | None,
    ov: dict[str, Any],
    sets: list[str] | None,
    inputs_base: Path | None = None,
    force_new: bool = False,
    strict: bool = False,
) -> None:
    from .config import config_origins, load_config, parse_set, resolve_inputs
    from .pipeline import PipelineConfig, run_pipeline
    from .tiny import uses_tiny

    given = parse_set(sets)
    cfg = load_config(PipelineConfig, config, ov, given)
    if inputs_base is not None:
        cfg = resolve_inputs(cfg, inputs_base)
    out = out or Path("runs") / config.stem
    from .validate import validate_pipeline

    validate_pipeline(cfg, str(config), config_origins(ov, given))
    if uses_tiny(cfg):
        _tiny_note()
    state = run_pipeline(cfg, out, source=str(config), force_new=force_new)
    err_console.print(f"{out}: stages {', '.join(state['stages'])}", markup=False, highlight=False)
    for name, info in state["stages"].items():
        if name.startswith("select."):
            exported = ", ".join(f"{out / p}" for p in info["exports"].values()) or "-"
            err_console.print(
                f"{name[7:]}: {info['conversations']} generated, {info['failed']} failed, "
                f"{info['kept_after_filter']} kept by the filter, {info['kept_after_dedup']} after dedup -> {exported}",
                markup=False,
                highlight=False,
            )
    if cfg.report:
        err_console.print(f"report: {out / 'report.html'}", markup=False, highlight=False)
    _finish(state["warnings"], strict)


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="run directory"),
    model: str | None = typer.Option(
        None,
        "--model",
        help=_MODEL_HELP + " (default: smollm2-135m, the embedded real model; dialforge-tiny for speed)",
    ),
    base_url: str | None = typer.Option(None, "--base-url", help=_URL_HELP),
    api_key_env: str | None = typer.Option(None, "--api-key-env", help=_KEY_HELP),
) -> None:
    """The quickstart: `dialforge run examples/quickstart.yaml` with the config and data that
    ship inside the package (works from any directory); offline on the embedded real model
    (smollm2-135m) unless --model/--base-url point it elsewhere."""
    if base_url and not model:
        raise DialforgeError("demo --base-url needs --model: the name of the model that server serves")
    cfg = _PACKAGE / "examples" / "quickstart.yaml"
    if not cfg.exists():
        raise DialforgeError(f"{cfg}: the quickstart config is missing from this installation")
    _run_pipeline(cfg, out, backend_overrides("model", model, base_url, api_key_env), None, inputs_base=cfg.parent)


@app.command()
def report(
    runs: list[Path] = typer.Argument(..., help="run directories (several: compared side by side)"),
    out: Path | None = typer.Option(None, "--out", help="HTML file (default RUN_DIR/report.html)"),
) -> None:
    """One self-contained HTML page: summary, strategy map, metrics, dialogues, comparison."""
    from .report import write_report

    for r in runs:
        if not r.exists():
            raise DialforgeError(f"{r}: no such folder")
        if not r.is_dir() or not ((r / "pipeline.json").exists() or next(r.rglob("manifest.json"), None)):
            raise DialforgeError(f"{r}: not a run directory (no pipeline.json or manifest.json in it)")
    path = write_report(runs, out or runs[0] / "report.html")
    err_console.print(f"report: {path}", markup=False, highlight=False)


strategies_app = typer.Typer(no_args_is_help=True, help="Inspect and use a strategy library.")
app.add_typer(strategies_app, name="strategies")


@strategies_app.command("show")
def strategies_show(
    library: Path = typer.Argument(..., help="library.json or its run directory"),
    top: int = typer.Option(20, help="how many strategies"),
    examples: int = typer.Option(2, help="source turns shown per strategy"),
) -> None:
    """The largest strategies with their sizes and real source turns."""
    from .induce import StrategyLibrary
    from .stats import plural

    lib = StrategyLibrary.load(library)
    out_console.print(
        f"{plural(len(lib.strategies), 'strategy', 'strategies')} from "
        f"{plural(lib.counts.get('extracted') or 0, 'extracted strategy', 'extracted strategies')} "
        f"(embedder {lib.embedder}, {lib.method} @ {lib.threshold})",
        highlight=False,
    )
    for s in lib.strategies[:top]:
        out_console.print(f"[bold]{s.id}[/] size {s.size}: {s.text}", highlight=False)
        for ex in s.examples[:examples]:
            out_console.print(
                f"    {ex.conversation_id}#{ex.turn_index}: {ex.instruction[:100]!r}", markup=False, highlight=False
            )


@strategies_app.command("assign")
def strategies_assign(
    library: Path = typer.Argument(..., help="library.json or its run directory"),
    records: Path = typer.Option(..., "--records", help="extracted records (JSONL with a strategy field)"),
    out: Path = typer.Option(..., "--out", help="output JSONL: each record with strategy_id and strategy_text"),
    embedder: str | None = typer.Option(None, help="embedder for unseen strategies (the library's)"),
) -> None:
    """Label each extracted record with its high-level strategy (simulator training labels)."""
    from .induce.assign import assign_records

    n = assign_records(library, records, out, embedder=embedder)
    err_console.print(f"{out}: {n} records labelled", markup=False, highlight=False)


# -- realism (issue 15): one block, owned by src/dialforge/realism/ ----------------------
@app.command("realism")
def realism_cmd(
    sim: Path = typer.Argument(..., help="simulated dialogues (any supported format)"),
    real: Path = typer.Option(..., "--real", help="real dialogues to compare with (held out from training)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object with a key per figure"),
    out: Path | None = typer.Option(None, "--out", help="folder for realism_card.json/.md"),
    seed: int = typer.Option(0, help="seed for every sample, fold and bootstrap"),
    max_turns: int = typer.Option(3000, "--max-turns", help="user turns per side for the embedding figures"),
    bootstrap: int = typer.Option(200, help="bootstrap resamples for 95% intervals (0: none)"),
    simulator_model: str | None = typer.Option(
        None, "--simulator-model", help="in-process simulator (model folder): held-out perplexity"
    ),
    base_model: str | None = typer.Option(None, "--base-model", help="its base model (default: from training)"),
    embedder: str | None = typer.Option(None, help="sentence-embedding model (default all-MiniLM-L6-v2)"),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="embedding cache folder"),
    floor: bool = typer.Option(False, "--floor", help="also compute REAL vs a disjoint REAL split (the floor)"),
) -> None:
    """Realism card: how much SIM's user turns look like REAL users' (docs/realism.md)."""
    from .realism import RealismConfig, realism, realism_floor, write_card

    ov: dict[str, Any] = {
        "seed": seed,
        "max_turns": max_turns,
        "bootstrap": bootstrap,
        "simulator_model": simulator_model,
        "base_model": base_model,
        "cache_dir": str(cache_dir) if cache_dir else None,
    }
    if embedder:
        ov["embedder"] = embedder
    cfg = RealismConfig.model_validate(ov)
    card = realism(sim, real, cfg)
    figures = card.figures()
    if floor:
        fl = realism_floor(real, cfg)
        figures["floor"] = fl.figures()
    if out is not None:
        write_card(card, out)
        if floor:
            write_card(fl, out, "realism_floor.json")
        err_console.print(f"wrote {out / 'realism_card.json'} and .md", markup=False, highlight=False)
    for w in card.warnings:  # caveats (small samples, skipped records) go last, on stderr
        err_console.print(f"warning: {w}", markup=False, highlight=False)
    if as_json:
        out_console.print_json(json.dumps(figures))
        return
    out_console.print(card.to_markdown(), markup=False, highlight=False)
    if floor:
        out_console.print("REAL vs REAL floor:\n" + fl.to_markdown(), markup=False, highlight=False)


def _click_errors() -> tuple[type[Exception], type[Exception]]:
    """(ClickException, UsageError) of the click that typer really runs on:
    typer >= 0.22 vendors it as `typer._click`, older typer uses `click`. `typer.BadParameter`
    is public in both and derives from both classes, so no private path is imported."""
    by_name = {c.__name__: c for c in typer.BadParameter.__mro__}
    return by_name["ClickException"], by_name["UsageError"]


_ClickException, _UsageError = _click_errors()
# commands whose run directory (or checkpoints) make a re-run resume where Ctrl-C stopped them
_RESUMABLE = {"run", "demo", "simulate", "selftalk", "agent", "train", "answer", "induce", "eval", "score"}


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
    names = {c.name or (c.callback.__name__.replace("_", "-") if c.callback else "") for c in app.registered_commands}
    names |= {g.name or "" for g in app.registered_groups}
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    return args[0] if args and args[0] in names else ""


def _interrupted() -> int:
    cmd = _command()
    resume = " The same command resumes it; nothing already written is lost." if cmd in _RESUMABLE else ""
    err_console.print(f"interrupted: dialforge {cmd} stopped by Ctrl-C.{resume}", markup=False, highlight=False)
    return 130


def _run() -> int:
    try:
        rv = app(standalone_mode=False)
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


if __name__ == "__main__":
    main()
