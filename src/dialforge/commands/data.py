"""Commands over dialogue files with no config of their own: convert, seeds, stats, filter,
dedup, export, check, report, and the listings (formats, metrics, modes)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from ..errors import DialforgeError
from ..io.check import CONSUMERS
from ..io.registry import EXPORT_FORMATS, WRITE_FORMATS
from ._output import out_console, print_skips, say
from ._spec import Command, Group

OnErrorOpt = typer.Option("fail", "--on-error", help="fail on the first bad record, or skip and count")
FromOpt = typer.Option("auto", "--from", help="input format, or auto (by shape); `dialforge formats` lists them")


def check_on_error(v: str) -> Any:
    if v not in ("fail", "skip"):
        raise DialforgeError(f"--on-error must be fail or skip, not {v!r}")
    return v


def _mapping(
    messages: str | None, role_field: str | None, content_field: str | None, roles: str | None, mapping: Path | None
) -> Any:
    """A field mapping from the flags (or a YAML file), or None when none was given."""
    from ..io.mapping import load_mapping, make_mapping, parse_roles

    if mapping is not None:
        return load_mapping(mapping)
    if not any((messages, role_field, content_field, roles)):
        return None
    return make_mapping(
        messages=messages, role_field=role_field, content_field=content_field, roles=parse_roles(roles or "")
    )


def convert(
    src: Path = typer.Argument(..., help="input file (or HF dataset folder)"),
    dst: Path = typer.Argument(..., help="output file (or folder for --to hf)"),
    from_: str = FromOpt,
    to: str = typer.Option("openai", "--to", help=" | ".join(WRITE_FORMATS)),
    on_error: str = OnErrorOpt,
    require_alternation: bool = typer.Option(
        False, "--require-alternation/--no-require-alternation", help="reject records whose roles do not alternate"
    ),
    dedup_ids: bool = typer.Option(False, "--dedup-ids", help="keep only the first record of each id"),
    messages: str | None = typer.Option(None, "--messages", help="mapping: field holding the turns"),
    role_field: str | None = typer.Option(None, "--role-field", help="mapping: turn field holding the role"),
    content_field: str | None = typer.Option(None, "--content-field", help="mapping: turn field holding the text"),
    roles: str | None = typer.Option(None, "--roles", help="mapping: e.g. human=user,gpt=assistant"),
    mapping: Path | None = typer.Option(None, "--mapping", help="mapping YAML (messages, role_field, ...)"),
) -> None:
    """Convert between dialogue formats (canonical: OpenAI messages JSONL), streaming."""
    from ..io import ReadReport, iter_conversations, write_conversations

    report = ReadReport(path=str(src))
    convs = iter_conversations(
        src,
        from_,
        on_error=check_on_error(on_error),
        report=report,
        require_alternation=require_alternation,
        dedup_ids=dedup_ids,
        mapping=_mapping(messages, role_field, content_field, roles, mapping),
    )
    n = write_conversations(convs, dst, to)
    print_skips(report)
    say(f"{report.summary()} ({report.format}) -> {n} written to {dst} ({to})")


def formats() -> None:
    """Every reader and writer: name, read/write/seeds, the shape it takes."""
    from ..io.registry import describe

    rows = describe()
    width = max(len(n) for n, _, _ in rows)
    for name, kinds, desc in rows:
        out_console.print(f"{name:<{width}}  {kinds:<16} {desc}", markup=False, highlight=False)


def seeds(
    src: Path = typer.Argument(..., help="seed file: text lines, JSONL/JSON of prompts, or any dialogue file"),
    out: Path | None = typer.Option(None, "--out", help="write the prompts here as JSONL {text}"),
    text_field: str | None = typer.Option(None, "--text-field", help="field holding the prompt (dotted)"),
    on_error: str = OnErrorOpt,
) -> None:
    """Read seed prompts as simulate/answer will, and say how many (optionally write them out)."""
    import orjson

    from ..io import ReadReport, read_seeds
    from ..io.files import atomic_write_bytes

    report = ReadReport(path=str(src))
    texts = read_seeds(src, text_field=text_field, on_error=check_on_error(on_error), report=report)
    if out is not None:
        atomic_write_bytes(out, b"".join(orjson.dumps({"text": t}) + b"\n" for t in texts))
    print_skips(report)
    skipped = f", {report.n_skipped} bad records skipped" if report.n_skipped else ""
    if report.not_openings:
        skipped += f", {report.not_openings} answers and in-thread replies left out"
    dest = f" -> {out}" if out else ""
    say(f"{src}: {len(texts)} seed prompts from {report.records} records ({report.format}){skipped}{dest}")


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
    from rich.table import Table

    from ..io import ReadReport
    from ..io.reader import iter_conversations
    from ..stats import conversation_stats, plural, tokenizer_counter

    report = ReadReport(path=str(path))
    counter = tokenizer_counter(tokenizer) if tokenizer else None
    s = conversation_stats(iter_conversations(path, from_, on_error=check_on_error(on_error), report=report), counter)
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


def modes() -> None:
    """The registered simulator modes and the commands that offer them."""
    from rich.table import Table

    from ..simulate.modes import registry

    t = Table(title="simulator modes")
    for col in ("mode", "commands", "description", "options"):
        t.add_column(col)
    for m in registry().values():
        opts = ", ".join(m.options.model_fields) if m.options else ""
        t.add_row(m.name, ", ".join(m.commands), m.description, opts)
    out_console.print(t)


def metrics(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """The registered metrics: name, level, direction (higher/lower is better), range; every
    conversation-level name can be used in `filter --where`."""
    from rich.table import Table

    from ..score.registry import metrics as registered

    ms = registered()
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


def filter_(
    path: Path = typer.Argument(..., help="conversation file or run directory"),
    where: str = typer.Option(..., "--where", help="e.g. 'user_turns >= 3 and termination_reason != \"error\"'"),
    out: Path = typer.Option(..., "--out", help="output JSONL"),
    scores: Path | None = typer.Option(None, help="scores JSONL (default: the one `score` wrote beside the data)"),
    on_error: str = OnErrorOpt,
) -> None:
    """Keep the conversations for which an expression over scores and meta is true."""
    from ..score import filter_file
    from ..score.scoring import locate

    data, scores_path, _ = locate(path)
    kept, read = filter_file(data, where, out, scores or scores_path, on_error=check_on_error(on_error))
    say(f"{out}: kept {kept} of {read} ({where})")


def dedup(
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

    from ..score import dedup_file
    from ..score.scoring import locate

    data, _, _ = locate(path)
    report = out.with_name(out.name.rsplit(".", 1)[0] + ".removed.jsonl")
    kept, read, removed = dedup_file(
        data, out, report, near=near or None, embedding=embedding or None, on_error=check_on_error(on_error)
    )
    why = Counter(r["reason"].split(" (")[0].split(" cosine")[0] for r in removed)
    gone = ", ".join(f"{n} {reason}" for reason, n in why.most_common()) or "none"
    say(f"{out}: kept {kept} of {read}; removed {gone}; report {report}")


def export(
    path: Path = typer.Argument(..., help="conversation file, simulator folder or `dialforge run` directory"),
    to: str = typer.Option(..., "--to", help=" | ".join(EXPORT_FORMATS)),
    out: Path = typer.Option(
        ..., "--out", help="file (folder for hf / llamafactory); for a run with several simulators, a folder"
    ),
    name: str = typer.Option("dialforge", help="dataset name (llamafactory dataset_info.json entry)"),
    on_error: str = OnErrorOpt,
) -> None:
    """Export for a training framework, each output checked by that framework's rules. A run
    directory exports each simulator's final (filtered, deduplicated) conversations."""
    from ..score.export import export_file_result, export_sources, export_target

    sources = export_sources(path)
    for src in sources:
        target = out if len(sources) == 1 else export_target(out, src.name, to)
        dataset = name if len(sources) == 1 else src.name
        r = export_file_result(src.path, to, target, dataset, on_error=check_on_error(on_error))
        say(f"{src.describe()}: {r.summary()}")


def check(
    path: Path = typer.Argument(..., help="exported file (a dataset folder for llamafactory and hf)"),
    for_: str = typer.Option(..., "--for", help=" | ".join(CONSUMERS)),
) -> None:
    """Check a file by a training consumer's own rules: one line per problem (file:line, field),
    exit 2 on any."""
    from ..io.check import check as run_check

    problems, n = run_check(path, for_)
    for p in problems:
        out_console.print(str(p), markup=False, highlight=False)
    if n:
        more = f" ({len(problems)} listed)" if n > len(problems) else ""
        say(f"error: {path}: {n} problems for {for_}{more}")
        sys.exit(2)
    say(f"{path}: 0 problems for {for_}")


def report(
    runs: list[Path] = typer.Argument(..., help="run directories (several: compared side by side)"),
    out: Path | None = typer.Option(None, "--out", help="HTML file (default RUN_DIR/report.html)"),
) -> None:
    """One self-contained HTML page: summary, strategy map, metrics, dialogues, comparison."""
    from ..report import write_report

    for r in runs:
        if not r.exists():
            raise DialforgeError(f"{r}: no such folder")
        if not r.is_dir() or not ((r / "pipeline.json").exists() or next(r.rglob("manifest.json"), None)):
            raise DialforgeError(f"{r}: not a run directory (no pipeline.json or manifest.json in it)")
    path = write_report(runs, out or runs[0] / "report.html")
    say(f"report: {path}")


def _plain(fn: Any, name: str | None = None) -> Command:
    """A command with no config: its typer function is used as it is."""
    return Command(name=name or fn.__name__, summary=fn.__doc__ or "", run=fn)


COMMANDS: list[Command | Group] = [
    _plain(convert),
    _plain(formats),
    _plain(seeds),
    _plain(stats),
    _plain(modes),
    _plain(metrics),
    _plain(filter_, "filter"),
    _plain(dedup),
    _plain(export),
    _plain(check),
    _plain(report),
]
