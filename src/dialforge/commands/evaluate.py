"""Commands that measure data: score, eval mt-bench, realism."""

from __future__ import annotations

import json
from pathlib import Path

from ._output import out_console, say
from ._spec import Arg, Backends, Call, Command, Group, Opt, Result
from .data import check_on_error

PACKAGE = Path(__file__).resolve().parents[1]
FASTCHAT = PACKAGE / "data" / "fastchat"


def _score(call: Call) -> Result:
    from ..score import score
    from ..score.scoring import locate
    from ._adapter import use_executor

    if call.no_embedding:
        call.overrides["embedder"] = None
    cfg = call.load()
    if call.no_embedding:
        cfg.embedder = None
    with use_executor(*call.executor):
        summary = score(call.path, cfg, on_error=check_on_error(call.on_error))
    _, per, summ = locate(call.path)
    return Result([f"wrote {per} and {summ}"], summary)


def _mt_bench(call: Call) -> Result:
    from rich.table import Table

    from ..config import read_yaml
    from ..score.mtbench import mt_bench

    in_yaml = read_yaml(call.config) if call.config is not None else None
    for path, default in (
        ("questions", "mt_bench/question.jsonl"),
        ("reference_answers", "mt_bench/reference_answer/gpt-4.jsonl"),
        ("judge_prompts", "judge_prompts.jsonl"),
    ):  # the FastChat files that ship inside the package, unless the YAML, the flags or --set say otherwise
        if not (isinstance(in_yaml, dict) and path in in_yaml):
            call.overrides.setdefault(path, str(FASTCHAT / default))
    cfg = call.load()
    summary = mt_bench(cfg, call.out, force_new=call.force_new)
    warnings = summary.pop("warnings", [])
    if cfg.mode == "single":
        t = Table(title=f"MT-Bench {cfg.model.model} (judge {cfg.judge.model})")
        t.add_column("category")
        t.add_column("score", justify="right")
        for c, v in summary["categories"].items():
            t.add_row(c, f"{v:.2f}")
        for turn, v in summary["turns"].items():
            t.add_row(f"turn {turn}", f"{v:.2f}")
        t.add_row("overall", f"{summary['mean']:.2f}" if summary["mean"] is not None else "-")
        out_console.print(t)
        out_console.print(f"judged {summary['judged']}, unparsed {summary['unparsed']}")
        return Result(warnings=warnings)
    return Result(data=summary, warnings=warnings)


def _realism(call: Call) -> None:
    from ..config import parse_set
    from ..realism import RealismConfig, realism, realism_floor, write_card
    from ._load import load_config

    given = parse_set(call.sets)
    cfg = load_config(RealismConfig, call.config, call.overrides, given)
    card = realism(call.sim, call.real, cfg)
    figures = card.figures()
    if call.floor:
        fl = realism_floor(call.real, cfg)
        figures["floor"] = fl.figures()
    if call.out is not None:
        write_card(card, call.out)
        if call.floor:
            write_card(fl, call.out, "realism_floor.json")
        say(f"wrote {call.out / 'realism_card.json'} and .md")
    for w in card.warnings:  # caveats (small samples, skipped records) go last, on stderr
        say(f"warning: {w}")
    if call.as_json:
        out_console.print_json(json.dumps(figures))
        return
    out_console.print(card.to_markdown(), markup=False, highlight=False)
    if call.floor:
        out_console.print("REAL vs REAL floor:\n" + fl.to_markdown(), markup=False, highlight=False)


ON_ERROR = Arg("on_error", str, "fail on the first bad record, or skip and count", flag="--on-error", default="fail")

COMMANDS: list[Command | Group] = [
    Command(
        name="score",
        summary="Metrics per conversation and per dataset, written beside the data.",
        run=_score,
        config="dialforge.score:ScoreConfig",
        args=(
            Arg("path", Path, "conversation file or run directory", required=True),
            Arg("no_embedding", bool, "skip embedding diversity", flag="--no-embedding", default=False),
            ON_ERROR,
        ),
        opts=(Opt("--library", "library"),),
        backends=Backends(own=(("judge", "--judge-model", "--judge-base-url"),)),
        executor="stages",
        resumable=True,  # the scores written so far are kept
        force_new=False,
    ),
    Group(name="eval", summary="Judged benchmarks."),
    Command(
        name="mt-bench",
        group="eval",
        summary=r"MT-Bench: answers from any backend, FastChat judge prompts, [[rating]] parsing.",
        run=_mt_bench,
        config="dialforge.score:MTBenchConfig",
        config_help="YAML MTBenchConfig (optional: the flags suffice)",
        args=(Arg("out", Path, "run directory", flag="--out", required=True),),
        opts=(
            Opt("--mode", "mode"),
            Opt("--baseline-answers", "baseline_answers", kind=Path),
            Opt("--questions", "questions", kind=Path, help="MT-Bench questions (default: the packaged ones)"),
            Opt(
                "--reference-answers",
                "reference_answers",
                kind=Path,
                help="reference answers for math and reasoning (default: the packaged GPT-4 ones)",
            ),
            Opt(
                "--judge-prompts",
                "judge_prompts",
                kind=Path,
                help="FastChat judge prompts (default: the packaged ones)",
            ),
        ),
        backends=Backends(
            shared=("model",),
            own=(("judge", "--judge", "--judge-base-url"),),
            model_help="answering model",
            required=("--model", "--judge"),
        ),
        resumable=True,
        strict=True,
        executor="config",
    ),
    Command(
        name="realism",
        summary="Realism card: how much SIM's user turns look like REAL users' (docs/realism.md).",
        run=_realism,
        config="dialforge.realism:RealismConfig",
        args=(
            Arg("sim", Path, "simulated dialogues (any supported format)", required=True),
            Arg("real", Path, "real dialogues to compare with (held out from training)", flag="--real", required=True),
            Arg("as_json", bool, "print one JSON object with a key per figure", flag="--json", default=False),
            Arg("out", Path, "folder for realism_card.json/.md", flag="--out"),
            Arg("floor", bool, "also compute REAL vs a disjoint REAL split (the floor)", flag="--floor", default=False),
        ),
        opts=(
            Opt("--seed", "seed"),
            Opt("--max-turns", "max_turns"),
            Opt("--bootstrap", "bootstrap"),
            Opt("--simulator-model", "simulator_model"),
            Opt("--base-model", "base_model"),
            Opt("--embedder", "embedder"),
            Opt("--cache-dir", "cache_dir", kind=Path),
        ),
    ),
]
