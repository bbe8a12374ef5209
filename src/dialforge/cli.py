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

from .errors import DialforgeError
from .llm.secrets import MaskSecretsFilter, mask_secrets

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


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="show tracebacks")) -> None:
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
    convs = read_conversations(
        src, from_, on_error=_check_on_error(on_error), report=report, require_alternation=require_alternation
    )
    n = write_conversations(convs, dst, to)
    for e in report.skipped:
        err_console.print(f"skipped: {e}", markup=False, highlight=False)
    err_console.print(
        f"{report.summary()} ({report.format}) -> {n} written to {dst} ({to})", markup=False, highlight=False
    )


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
    out_console.print(
        f"conversations: {s['conversations']}  user turns/conv: mean {u['mean']} "
        f"min {u['min']} median {u['median']} max {u['max']}  "
        f"skipped records: {s['skipped_records']}"
    )
    out_console.print(
        f"role-order problems: {s['conversations_with_problems']} conversations {s['role_order_problems']}"
    )


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
    strict: bool = StrictOpt,
    executor: str | None = ExecutorOpt,
    ray_address: str | None = RayAddressOpt,
) -> None:
    """Answer seed questions with one backend (first exchanges for seeded simulation)."""
    from .answer import AnswerConfig
    from .answer import answer as run_answer
    from .config import load_config

    ov = backend_overrides("assistant", model, base_url, api_key_env)
    ov["prompts"] = [str(p) for p in prompts] if prompts else None
    ov["limit"] = limit
    ov.update(executor_overrides(executor, ray_address))
    cfg = load_config(AnswerConfig, config, ov)
    summary = run_answer(cfg, out, force_new=force_new, use_cache=not no_cache)
    warnings = summary.pop("warnings", [])
    err_console.print(f"{out}: {summary}", markup=False, highlight=False)
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
) -> None:
    """IDEAS induction: filter, extract, embed, cluster, abstract -> RUN_DIR/library.json."""
    from .config import load_config
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
        }
    )
    cfg = load_config(InduceConfig, config, ov)
    lib = run_induce(cfg, out, force_new=force_new, use_cache=not no_cache)
    err_console.print(f"{out}/library.json: {lib.counts}", markup=False, highlight=False)


@app.command()
def simulate(
    config: Path = typer.Option(..., "--config", help="YAML SimulateConfig (see examples/)"),
    out: Path = typer.Option(..., "--out", help="run directory"),
    user_model: str | None = typer.Option(None, "--user-model", help="user simulator model"),
    user_base_url: str | None = typer.Option(None, "--user-base-url"),
    assistant_model: str | None = typer.Option(None, "--assistant-model", help="assistant model"),
    assistant_base_url: str | None = typer.Option(None, "--assistant-base-url"),
    api_key_env: str | None = typer.Option(None, "--api-key-env", help="env var holding the API key (both roles)"),
    limit: int | None = typer.Option(None, help="only the first N seeds"),
    no_cache: bool = typer.Option(False, "--no-cache"),
    force_new: bool = typer.Option(False, "--force-new"),
    strict: bool = StrictOpt,
    executor: str | None = ExecutorOpt,
    ray_address: str | None = RayAddressOpt,
) -> None:
    """Self-play: a user simulator (strategy | socratic | persona) talks with an assistant."""
    from .config import load_config
    from .simulate import SimulateConfig
    from .simulate import simulate as run_simulate

    ov = {
        **backend_overrides("user", user_model, user_base_url, api_key_env),
        **backend_overrides("assistant", assistant_model, assistant_base_url, api_key_env),
        "seeds.limit": limit,
        **executor_overrides(executor, ray_address),
    }
    cfg = load_config(SimulateConfig, config, ov)
    summary = run_simulate(cfg, out, force_new=force_new, use_cache=not no_cache)
    warnings = summary.pop("warnings", [])
    err_console.print(f"{out}/conversations.jsonl: {summary}", markup=False, highlight=False)
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
) -> None:
    """Role-masked SFT (TRL + PEFT LoRA). Multi-GPU: `accelerate launch --config_file
    configs/accelerate/... -m dialforge.cli train ...`."""
    from .config import load_config
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
    cfg = load_config(TrainConfig, config, ov)
    summary = run_train(cfg)
    err_console.print(
        f"{summary['final']}: {summary['examples']} examples, {summary['steps']} steps, "
        f"loss {summary['losses'][:1]} -> {summary['losses'][-1:]}",
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
    executor: str | None = ExecutorOpt,
    ray_address: str | None = RayAddressOpt,
) -> None:
    """Metrics per conversation and per dataset, written beside the data."""
    from .config import load_config
    from .score import ScoreConfig
    from .score import score as run_score
    from .score.scoring import locate

    ov: dict[str, Any] = {"library": library}
    if judge_model:
        ov.update(backend_overrides("judge", judge_model, judge_base_url, api_key_env))
    if no_embedding:
        ov["embedder"] = None
    cfg = load_config(ScoreConfig, config, {k: v for k, v in ov.items() if v is not None})
    if no_embedding:
        cfg.embedder = None
    with _use_executor(executor, ray_address):
        summary = run_score(path, cfg)
    _, per, summ = locate(path)
    out_console.print_json(json.dumps(summary))
    err_console.print(f"wrote {per} and {summ}", markup=False, highlight=False)


def _read_input(path: Path) -> Any:
    from .io import read_conversations
    from .score.scoring import locate

    data, scores_path, _ = locate(path)
    return data, read_conversations(data, on_error="skip"), scores_path


@app.command("filter")
def filter_cmd(
    path: Path = typer.Argument(..., help="conversation file or run directory"),
    where: str = typer.Option(..., "--where", help="e.g. 'user_turns >= 3 and termination_reason != \"error\"'"),
    out: Path = typer.Option(..., "--out", help="output JSONL"),
    scores: Path | None = typer.Option(None, help="scores JSONL (default: the one `score` wrote beside the data)"),
) -> None:
    """Keep the conversations for which an expression over scores and meta is true."""
    from .io import write_conversations
    from .score import filter_conversations
    from .score.select import load_scores

    _, convs, scores_path = _read_input(path)
    kept = filter_conversations(convs, load_scores(scores or scores_path), where)
    write_conversations(kept, out)
    err_console.print(f"{out}: kept {len(kept)} of {len(convs)} ({where})", markup=False, highlight=False)


@app.command("dedup")
def dedup_cmd(
    path: Path = typer.Argument(..., help="conversation file or run directory"),
    out: Path = typer.Option(..., "--out", help="output JSONL (a .removed.jsonl report goes beside it)"),
    near: float | None = typer.Option(0.8, help="MinHash Jaccard threshold (0 to disable)"),
    embedding: float | None = typer.Option(None, help="cosine threshold for embedding dedup (off by default)"),
) -> None:
    """Exact, near-duplicate (MinHash) and embedding dedup, reporting what was removed and why."""
    from collections import Counter

    import orjson

    from .io import write_conversations
    from .io.reader import atomic_write_bytes
    from .score import dedup

    _, convs, _ = _read_input(path)
    kept, removed = dedup(convs, near=near or None, embedding=embedding)
    write_conversations(kept, out)
    report = out.with_name(out.name.rsplit(".", 1)[0] + ".removed.jsonl")
    atomic_write_bytes(report, b"".join(orjson.dumps(r) + b"\n" for r in removed))
    why = Counter(r["reason"].split(" (")[0].split(" cosine")[0] for r in removed)
    err_console.print(
        f"{out}: kept {len(kept)} of {len(convs)}; removed {dict(why)}; report {report}", markup=False, highlight=False
    )


@app.command("export")
def export_cmd(
    path: Path = typer.Argument(..., help="conversation file or run directory"),
    to: str = typer.Option(..., "--to", help="sharegpt | openai | hf | llamafactory"),
    out: Path = typer.Option(..., "--out", help="file, or folder for hf / llamafactory"),
    name: str = typer.Option("dialforge", help="dataset name (llamafactory dataset_info.json entry)"),
) -> None:
    """Export for training frameworks."""
    from .score import export

    _, convs, _ = _read_input(path)
    written = export(convs, to, out, name)
    err_console.print(
        f"exported {len(convs)} conversations: {', '.join(map(str, written))}", markup=False, highlight=False
    )


eval_app = typer.Typer(no_args_is_help=True, help="Judged benchmarks.")
app.add_typer(eval_app, name="eval")

_DATA = Path(__file__).resolve().parents[2] / "data" / "fastchat"


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
    executor: str | None = ExecutorOpt,
    ray_address: str | None = RayAddressOpt,
) -> None:
    """MT-Bench: answers from any backend, FastChat judge prompts, [[rating]] parsing."""
    from .config import load_config
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
    cfg = load_config(MTBenchConfig, None, ov)
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
    kind: str = typer.Argument(..., help="star or abcd"),
    src: Path = typer.Argument(..., help="STAR tasks/ folder, or ABCD guidelines.json (or its folder)"),
    out: Path = typer.Argument(..., help="output folder of workflow YAML files"),
) -> None:
    """Import workflows from real schemas; every task imports or is reported with its reason."""
    from .workflows import import_abcd, import_star, write_workflows

    if kind not in ("star", "abcd"):
        raise DialforgeError(f"workflows import: kind must be star or abcd, not {kind!r}")
    wfs, failed = import_star(src) if kind == "star" else import_abcd(src)
    write_workflows(wfs, out)
    err_console.print(f"{out}: {len(wfs)} workflows imported, {len(failed)} not", markup=False, highlight=False)
    for name, why in failed.items():
        err_console.print(f"  not imported: {name}: {why}", markup=False, highlight=False)


@app.command()
def selftalk(
    config: Path = typer.Option(..., "--config", help="YAML SelfTalkConfig"),
    out: Path = typer.Option(..., "--out", help="run directory"),
    workflows: Path | None = typer.Option(None, "--workflows", help="workflow folder or file"),
    loops: int | None = typer.Option(None, "--loops", help="generate -> filter -> train rounds"),
    agent_model: str | None = typer.Option(None, "--agent-model"),
    agent_base_url: str | None = typer.Option(None, "--agent-base-url"),
    client_model: str | None = typer.Option(None, "--client-model"),
    client_base_url: str | None = typer.Option(None, "--client-base-url"),
    api_key_env: str | None = typer.Option(None, "--api-key-env"),
    force_new: bool = typer.Option(False, "--force-new"),
    strict: bool = StrictOpt,
) -> None:
    """Self-talk for workflow-following agents: client/agent loop, subgoal metric, filters, training."""
    from .config import load_config
    from .workflows import SelfTalkConfig
    from .workflows import selftalk as run_selftalk

    ov = {
        **backend_overrides("agent", agent_model, agent_base_url, api_key_env),
        **backend_overrides("client", client_model, client_base_url, api_key_env),
        "workflows": str(workflows) if workflows else None,
        "loops": loops,
    }
    cfg = load_config(SelfTalkConfig, config, ov)
    summary = run_selftalk(cfg, out, force_new=force_new)
    warnings = summary.pop("warnings", [])
    out_console.print_json(json.dumps(summary))
    _finish(warnings, strict)


@app.command("run")
def run_cmd(
    config: Path = typer.Argument(..., help="pipeline YAML (see examples/quickstart.yaml)"),
    out: Path | None = typer.Option(None, "--out", help="run directory (default runs/<config name>)"),
    model: str | None = typer.Option(None, "--model", help="model for every role: name (with --base-url) or path"),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible server for every role"),
    api_key_env: str | None = typer.Option(None, "--api-key-env"),
    executor: str | None = ExecutorOpt,
    ray_address: str | None = RayAddressOpt,
) -> None:
    """The whole job from one YAML: induce -> simulate -> score -> filter -> dedup -> export -> train -> report."""
    from .config import load_config
    from .pipeline import TINY, PipelineConfig, run_pipeline, uses_tiny

    ov = backend_overrides("model", model, base_url, api_key_env)
    cfg = load_config(PipelineConfig, config, ov)
    out = out or Path("runs") / config.stem
    if uses_tiny(cfg):
        err_console.print(
            f"note: running on `{TINY}`, a tiny random model built on this machine, so the text is not "
            "meaningful; it shows every stage working offline. Point the same config at a real model "
            "with --base-url URL --model NAME (an OpenAI-compatible server) or --model /path/to/model.",
            markup=False,
            highlight=False,
        )
    with _use_executor(executor, ray_address):
        state = run_pipeline(cfg, out)
    err_console.print(f"{out}: stages {', '.join(state['stages'])}", markup=False, highlight=False)
    if cfg.report:
        err_console.print(f"report: {out / 'report.html'}", markup=False, highlight=False)


@app.command()
def demo(out: Path = typer.Option(Path("runs/demo"), "--out", help="run directory")) -> None:
    """The offline quickstart: `dialforge run examples/quickstart.yaml` on the tiny local model."""
    cfg = Path(__file__).resolve().parents[2] / "examples" / "quickstart.yaml"
    if not cfg.exists():
        raise DialforgeError(f"{cfg}: the quickstart config ships with the source checkout")
    run_cmd(cfg, out, None, None, None, None, None)


@app.command()
def report(
    runs: list[Path] = typer.Argument(..., help="run directories (several: compared side by side)"),
    out: Path | None = typer.Option(None, "--out", help="HTML file (default RUN_DIR/report.html)"),
) -> None:
    """One self-contained HTML page: summary, strategy map, metrics, dialogues, comparison."""
    from .report import write_report

    for r in runs:
        if not r.is_dir():
            raise DialforgeError(f"{r}: not a run directory")
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

    lib = StrategyLibrary.load(library)
    out_console.print(
        f"{len(lib.strategies)} strategies from {lib.counts.get('extracted')} turns "
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


def _click_errors() -> tuple[type[Exception], type[Exception]]:
    """(ClickException, UsageError) of the click that typer really runs on:
    typer >= 0.22 vendors it as `typer._click`, older typer uses `click`. `typer.BadParameter`
    is public in both and derives from both classes, so no private path is imported."""
    by_name = {c.__name__: c for c in typer.BadParameter.__mro__}
    return by_name["ClickException"], by_name["UsageError"]


_ClickException, _UsageError = _click_errors()
# commands whose run directory (or checkpoints) make a re-run resume where Ctrl-C stopped them
_RESUMABLE = {"run", "demo", "simulate", "selftalk", "train", "answer", "induce", "eval", "score"}


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
