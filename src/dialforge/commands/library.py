"""Commands over strategy libraries and workflow graphs (`strategies ...`, `workflows ...`)."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import DialforgeError
from ._output import out_console, say
from ._spec import Command, Group


def strategies_show(
    library: Path = typer.Argument(..., help="library.json or its run directory"),
    top: int = typer.Option(20, help="how many strategies"),
    examples: int = typer.Option(2, help="source turns shown per strategy"),
) -> None:
    """The largest strategies with their sizes and real source turns."""
    from ..induce import StrategyLibrary
    from ..stats import plural

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


def strategies_assign(
    library: Path = typer.Argument(..., help="library.json or its run directory"),
    records: Path = typer.Option(..., "--records", help="extracted records (JSONL with a strategy field)"),
    out: Path = typer.Option(..., "--out", help="output JSONL: each record with strategy_id and strategy_text"),
    embedder: str | None = typer.Option(None, help="embedder for unseen strategies (default: the library's)"),
) -> None:
    """Label each extracted record with its high-level strategy (simulator training labels)."""
    from ..induce.assign import assign_records

    n = assign_records(library, records, out, embedder=embedder)
    say(f"{out}: {n} records labelled")


def workflows_show(path: Path = typer.Argument(..., help="workflow YAML file or folder")) -> None:
    """Validate and draw workflows as text."""
    from ..workflows import draw, load_workflows

    for wf in load_workflows(path):
        out_console.print(draw(wf), markup=False, highlight=False)
        out_console.print()


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
    from ..workflows import import_abcd, import_star, write_workflows

    if kind not in ("star", "abcd", "sgd"):
        raise DialforgeError(f"workflows import: kind must be star, abcd or sgd, not {kind!r}")
    note = ""
    if kind == "sgd":
        import orjson

        from ..io.files import atomic_write_bytes
        from ..workflows.sgd import import_sgd

        wfs, failed, intents = import_sgd(
            src, dialogues=list(dialogues or []), intents_per_workflow=intents_per_workflow
        )
        write_workflows(wfs, out)
        atomic_write_bytes(out / "intents.json", orjson.dumps(intents, option=orjson.OPT_INDENT_2))
        note = f"; client intents in {out / 'intents.json'} (selftalk --intents)"
    else:
        wfs, failed = import_star(src) if kind == "star" else import_abcd(src)
        write_workflows(wfs, out)
    say(f"{out}: {len(wfs)} workflows imported, {len(failed)} not{note}")
    for name, why in failed.items():
        say(f"  not imported: {name}: {why}")


COMMANDS: list[Command | Group] = [
    Group(name="strategies", summary="Inspect and use a strategy library."),
    Command("show", strategies_show.__doc__ or "", strategies_show, group="strategies"),
    Command("assign", strategies_assign.__doc__ or "", strategies_assign, group="strategies"),
    Group(name="workflows", summary="Workflow graphs for self-talk."),
    Command("show", workflows_show.__doc__ or "", workflows_show, group="workflows"),
    Command("import", workflows_import.__doc__ or "", workflows_import, group="workflows"),
]
