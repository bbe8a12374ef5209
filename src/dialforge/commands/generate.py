"""Commands that generate dialogues from a config: answer, induce, simulate, selftalk, agent,
and the whole pipeline (run, demo)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import DialforgeError
from ._output import tiny_note
from ._spec import Arg, Backends, Call, Command, Group, Opt, Result

PACKAGE = Path(__file__).resolve().parents[1]  # data/ and examples/ ship inside the package
OUT = Arg("out", Path, "run directory", flag="--out", required=True)


def _answer(call: Call) -> Result:
    from ..answer import answer

    summary = answer(call.load(), call.out, force_new=call.force_new, use_cache=call.use_cache)
    line = (
        f"{call.out}: {summary['total']} of {summary['questions']} questions answered "
        f"({summary['answered_now']} now, {summary['already_done']} before, {summary['failed']} failed)"
    )
    return Result([line], warnings=summary.pop("warnings", []))


def _induce(call: Call) -> Result:
    from ..induce import induce
    from ..run.health import run_warnings
    from ..stats import plural

    out = call.out
    lib = induce(call.load(), out, force_new=call.force_new, use_cache=call.use_cache)
    c = lib.counts
    dropped = ", ".join(f"{n} {why}" for why, n in (c.get("dropped") or {}).items())
    line = (
        f"{out}/library.json: {plural(len(lib.strategies), 'strategy', 'strategies')} from "
        f"{plural(c.get('extracted', 0), 'extracted strategy', 'extracted strategies')}; "
        f"{c.get('dialogues_kept')} of {c.get('dialogues_read')} dialogues kept"
        f"{f' ({dropped} dropped)' if dropped else ''}, {plural(c.get('distinct_turns', 0), 'distinct user turn')}"
    )
    return Result([line], warnings=run_warnings(out))


def _simulate(call: Call) -> Result:
    from ..simulate import simulate
    from ..stats import plural

    summary = simulate(call.load(), call.out, force_new=call.force_new, use_cache=call.use_cache)
    n, now, again = summary["conversations"], summary["new"], summary["retried"]
    retried = f", {again} of them retrying failed ones" if again else ""
    reasons = ", ".join(f"{k} {v}" for k, v in summary["termination_reasons"].items()) or "-"
    line = (
        f"{call.out}/conversations.jsonl: {plural(n, 'conversation')} ({now} run now{retried}; {n - now} from "
        f"before); ended on: {reasons}"
    )
    return Result([line], warnings=summary.pop("warnings", []))


def _selftalk(call: Call) -> Result:
    from ..workflows import selftalk

    summary = selftalk(call.load(), call.out, force_new=call.force_new)
    warnings = summary.pop("warnings", [])
    return Result(data=summary, warnings=warnings)


def _agent(call: Call, config: Path | None = None) -> Result:
    from ..agentic import AgentToolsConfig, agentic

    cfg = call.load(AgentToolsConfig, config or call.config)
    summary = agentic(cfg, call.out, force_new=call.force_new)
    warnings = summary.pop("warnings", [])
    lines = [
        f"{task}: {row['conversations']} conversations, success {row['success']}, pass^1 {row['pass^1']}, "
        f"partial {row['partial_credit']}, {row['tool_calls']} calls ({row['tool_errors']} tool errors), "
        f"simulator errors {row['simulator_error_rate']}"
        for task, row in summary["tasks"].items()
    ]
    return Result(lines, summary, warnings)


def _is_agent_config(config: Path) -> bool:
    """A YAML with `agent` and `user` roles and no `simulate` section: an AgentToolsConfig (so
    `dialforge run examples/agent_tools.yaml` runs it)."""
    from ..config import read_yaml

    try:
        data = read_yaml(config)
    except Exception:  # the pipeline's loader reports a broken file with its line
        return False
    return isinstance(data, dict) and "simulate" not in data and {"agent", "user"} <= set(data)


def _as_roles(ov: dict[str, Any], role: str, roles: tuple[str, ...]) -> dict[str, Any]:
    """`run`'s backend flags (set for `model`) re-aimed at an agent config's roles."""
    out = {k: v for k, v in ov.items() if k != role and not k.startswith(role + ".")}
    for k, v in ov.items():
        if k == role or k.startswith(role + "."):
            out.update({r + k[len(role) :]: v for r in roles})
    return out


def _run(call: Call) -> Result:
    config = call.config
    assert config is not None
    out = call.out or Path("runs") / config.stem
    if _is_agent_config(config):  # agentic self-talk (examples/agent_tools.yaml)
        call.overrides = _as_roles(call.overrides, "model", ("agent", "user"))
        call.overrides.pop("executor", None)
        call.values["out"] = out
        return _agent(call)
    return run_pipeline(call, config, out)


def run_pipeline(call: Call, config: Path, out: Path, inputs_base: Path | None = None) -> Result:
    from ..config import config_origins, parse_set, resolve_inputs
    from ..pipeline import PipelineConfig
    from ..pipeline import run_pipeline as run
    from ..pipeline.validate import validate_pipeline
    from ..tiny import uses_tiny
    from ._load import load_config

    given = parse_set(call.sets)
    cfg = load_config(PipelineConfig, config, call.overrides, given)
    if inputs_base is not None:
        cfg = resolve_inputs(cfg, inputs_base)
    validate_pipeline(cfg, str(config), config_origins(call.overrides, given))
    if uses_tiny(cfg):
        tiny_note()
    state = run(cfg, out, source=str(config), force_new=call.force_new)
    lines = [f"{out}: stages {', '.join(state['stages'])}"]
    for name, info in state["stages"].items():
        if name.startswith("select."):
            exported = ", ".join(f"{out / p}" for p in info["exports"].values()) or "-"
            lines.append(
                f"{name[7:]}: {info['conversations']} generated, {info['failed']} failed, "
                f"{info['kept_after_filter']} kept by the filter, {info['kept_after_dedup']} after dedup -> {exported}"
            )
    if cfg.report:
        lines.append(f"report: {out / 'report.html'}")
    return Result(lines, warnings=state["warnings"])


def _demo(call: Call) -> Result:
    if "model.base_url" in call.overrides and "model.model" not in call.overrides:
        raise DialforgeError("demo --base-url needs --model: the name of the model that server serves")
    cfg = PACKAGE / "examples" / "quickstart.yaml"
    if not cfg.exists():
        raise DialforgeError(f"{cfg}: the quickstart config is missing from this installation")
    return run_pipeline(call, cfg, call.out, inputs_base=cfg.parent)


COMMANDS: list[Command | Group] = [
    Command(
        name="answer",
        summary="Answer seed questions with one backend (first exchanges for seeded simulation).",
        run=_answer,
        config="dialforge.answer:AnswerConfig",
        args=(OUT,),
        opts=(
            Opt("--prompts", "prompts", kind=list[Path]),
            Opt("--text-field", "text_field"),
            Opt("--limit", "limit"),
        ),
        backends=Backends(shared=("assistant",), model_help="model name (with --base-url) or local path / hub id"),
        cache=True,
        resumable=True,
        strict=True,
        executor="config",
    ),
    Command(
        name="induce",
        summary="IDEAS induction: filter, extract, embed, cluster, abstract -> RUN_DIR/library.json.",
        run=_induce,
        config="dialforge.induce:InduceConfig",
        args=(OUT,),
        opts=(
            Opt("--dialogues", "dialogues", kind=list[Path]),
            Opt("--embedder", "embedder"),
            Opt("--threshold", "threshold"),
            Opt("--method", "method"),
            Opt("--from", "format"),
            Opt("--on-error", "on_error"),
            Opt("--max-dialogues", "max_dialogues"),
        ),
        backends=Backends(shared=("model",), model_help="model name (with --base-url) or local path / hub id"),
        cache=True,
        resumable=True,
        strict=True,
        executor="config",
    ),
    Command(
        name="simulate",
        summary="Self-play: a user simulator (strategy | socratic | persona) talks with an assistant.",
        run=_simulate,
        config="dialforge.simulate:SimulateConfig",
        config_arg="required",
        args=(OUT,),
        opts=(
            Opt("--limit", "seeds.limit"),
            Opt("--text-field", "seeds.text_field"),
        ),
        backends=Backends(
            shared=("user", "assistant"),
            own=(
                ("user", "--user-model", "--user-base-url"),
                ("assistant", "--assistant-model", "--assistant-base-url"),
            ),
        ),
        cache=True,
        resumable=True,
        strict=True,
        executor="config",
    ),
    Command(
        name="selftalk",
        summary="Self-talk for workflow-following agents: client/agent loop, subgoal metric, filters, training.",
        run=_selftalk,
        config="dialforge.workflows:SelfTalkConfig",
        config_arg="required",
        args=(OUT,),
        opts=(
            Opt("--workflows", "workflows", kind=Path),
            Opt("--loops", "loops"),
            Opt("--intents", "intents_file", kind=Path),
        ),
        backends=Backends(
            shared=("agent", "client"),
            own=(("agent", "--agent-model", "--agent-base-url"), ("client", "--client-model", "--client-base-url")),
        ),
        resumable=True,
        strict=True,
        executor="config",
    ),
    Command(
        name="agent",
        summary="Agentic self-talk: a tool-calling agent on STAR's APIs and databases, a customer with a "
        "hidden goal, success checked on the final database state; verified successes exported for "
        "function-calling training.",
        run=_agent,
        config="dialforge.agentic:AgentToolsConfig",
        config_arg="required",
        config_help="YAML AgentToolsConfig (see examples/agent_tools.yaml)",
        args=(OUT,),
        opts=(Opt("--samples", "samples"),),
        backends=Backends(
            shared=("agent", "user"),
            own=(("agent", "--agent-model", "--agent-base-url"), ("user", "--user-model", "--user-base-url")),
        ),
        resumable=True,
        strict=True,
    ),
    Command(
        name="run",
        summary="The whole job from one YAML: induce -> simulate -> score -> filter -> dedup -> export -> "
        "realism -> train -> report.",
        run=_run,
        config="dialforge.pipeline:PipelineConfig",
        config_arg="argument",
        config_help="pipeline YAML (see examples/quickstart.yaml)",
        args=(Arg("out", Path, "run directory (default runs/<config name>)", flag="--out"),),
        backends=Backends(shared=("model",)),
        resumable=True,
        strict=True,
        executor="config",
    ),
    Command(
        name="demo",
        summary="The quickstart: `dialforge run examples/quickstart.yaml` with the config and data that "
        "ship inside the package (works from any directory); offline on the embedded real model "
        "(smollm2-135m) unless --model/--base-url point it elsewhere.",
        run=_demo,
        config="dialforge.pipeline:PipelineConfig",
        config_arg="none",
        args=(Arg("out", Path, "run directory", flag="--out", default=Path("runs/demo")),),
        backends=Backends(
            shared=("model",),
            model_help="model for every role: name (with --base-url) or local path / hub id (default: "
            "smollm2-135m, the embedded real model; dialforge-tiny for speed)",
        ),
        resumable=True,
        force_new=False,
    ),
]
