"""`dialforge agent`: agentic self-talk as a stage on the kernel. One job per (goal, sample);
the shared engine plays the goal-holding customer against the tool-calling agent; every
record carries its verdict, computed on the state its conversation left.

Layout: RUN_DIR/conversations.jsonl (every conversation, with `meta.agentic`),
kept.jsonl (verified successes), exports/openai.jsonl, exports/llamafactory/, summary.json.

Resume: a conversation is stored when it ends; its database copy lives only while it runs
and is rebuilt by replaying its recorded calls (`success.replay`), so a killed run started
again skips the finished conversations and plays the others from a fresh copy: nothing is
booked twice.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..conversation import Conversation, ToolCall, stable_hash
from ..io.output import write_conversations
from ..llm.client import run_sync
from ..llm.pool import BackendPool
from ..llm.types import SamplingParams
from ..run.kernel import Job, Records, Stage, StageContext, make_executor, run_stage
from ..run.rundir import RunDir, config_fingerprint
from ..simulate.engine import Engine, EngineSettings, Seed
from ..simulate.modes import ModeConfig, SimulatorMode, get_mode
from ..simulate.run import without_timings
from .config import AgentToolsConfig, bundled_star
from .database import Database, load_star_database
from .goals import TASKS, Goal, make_goals
from .policy import Runtime, ToolAgent
from .success import pass_hat_k, simulator_errors, verdict
from .tools import ToolBox, load_python_tool, load_star_api, star_tool

AGENT_PARAMS = SamplingParams(temperature=0.7, max_tokens=256)
USER_PARAMS = SamplingParams(temperature=0.8, max_tokens=96)


@dataclass
class World:
    """What every conversation of a run shares (read-only): the database it copies, the
    tools, the goals, and each field's allowed values (to catch a user contradicting its goal)."""

    db: Database
    toolboxes: dict[str, ToolBox]  # per task: its search and booking APIs, then the user's tools
    goals: list[Goal]
    categories: dict[str, list[str]]


def _categories(apis: dict[str, Any]) -> dict[str, list[str]]:
    """The value lists of the APIs' categorical input fields (RequestType left out)."""
    categories: dict[str, list[str]] = {}
    for api in apis.values():
        for f in api.spec["input"]:
            if isinstance(f.get("Categories"), list) and f["Name"] != "RequestType":
                categories.setdefault(f["Name"], [str(c) for c in f["Categories"]])
    return categories


def build_world(cfg: AgentToolsConfig) -> World:
    star = Path(cfg.star_dir) if cfg.star_dir else bundled_star()
    specs = [TASKS[t] for t in cfg.tasks]
    db = load_star_database(star, sorted({s.domain for s in specs}), rows=cfg.db_rows, seed=cfg.db_seed)
    names = list(dict.fromkeys(n for s in specs for n in (s.search_api, s.book_api)))
    apis = {n: load_star_api(star, n) for n in names}
    own = [load_python_tool(r) for r in cfg.python_tools]
    boxes = {s.name: ToolBox([star_tool(apis[s.search_api]), star_tool(apis[s.book_api]), *own]) for s in specs}
    categories = _categories(apis)
    goals = [g for s in specs for g in make_goals(s, db, apis, cfg.goals_per_task, cfg.goal_seed)]
    return World(db, boxes, goals, categories)


def _structure_calls(conv: Conversation) -> None:
    """Tool calls and call ids held in message meta while the dialogue ran become fields."""
    for m in conv.messages:
        raw = m.meta.pop("tool_calls", None)
        if raw:
            m.tool_calls = [ToolCall.model_validate(c) for c in raw]
        if m.role == "tool" and m.tool_call_id is None and isinstance(m.meta.get("tool_call_id"), str):
            m.tool_call_id = m.meta.pop("tool_call_id")


def finish_record(conv: Conversation, rt: Runtime, world: World) -> Conversation:
    """Structured calls and the tool list on the conversation, and its verdict in
    `meta.agentic` (success on state, partial credit, call validity, simulator errors)."""
    _structure_calls(conv)
    conv.tools = rt.toolbox.schemas()
    reason = str(conv.meta.get("termination_reason"))
    answers = sum(1 for m in conv.messages if m.role == "assistant" and not m.tool_calls and m.content)
    calls = [(c["name"], c["arguments"], c["ok"]) for c in rt.calls]
    final = rt.db.bookings()
    v = verdict(rt.goal, final, calls, reason, answers)
    user_turns = [m.content for m in conv.messages if m.role == "user"]
    user_turns += [str(conv.meta["final_user_turn"])] if conv.meta.get("final_user_turn") else []
    sim = simulator_errors(rt.goal, user_turns, world.categories, reason)
    c = rt.counts
    side = None if v["success"] else ("error" if reason == "error" else ("simulator" if sim else "agent"))
    conv.meta["agentic"] = {
        **v,
        "task": rt.goal.task,
        "goal_id": rt.goal.id,
        "goal": rt.goal.instruction(),
        "expected_state": rt.goal.expected,
        "final_state": final,
        "calls": c["calls"],
        "valid_calls": c["valid_calls"],
        "unparsed_calls": c["unparsed_calls"],
        "tool_errors": c["tool_errors"],
        "tool_error_kinds": dict(Counter(str(x["error"]) for x in rt.calls if x["error"])),
        "over_limit": c["over_limit"],
        "simulator_errors": sim,
        "failure_side": side,
    }
    return conv


class AgenticStage(Stage):
    name = "agentic"
    output = "conversations.jsonl"

    def __init__(self, cfg: AgentToolsConfig, world: World) -> None:
        self.cfg = cfg
        self.world = world
        self.concurrency = cfg.concurrency
        self.key = config_fingerprint(cfg)
        self.engine: Engine | None = None

    def plan(self) -> list[Job]:
        return [
            Job(stable_hash("agentic", self.key, g.id, k), (g, k))
            for g in self.world.goals
            for k in range(self.cfg.samples)
        ]

    async def open(self, ctx: StageContext) -> None:
        cfg = self.cfg
        user = ctx.llm(cfg.user, "agentic.user", params=cfg.user.params_or(USER_PARAMS), system_prompt="")
        agent = ctx.llm(cfg.agent, "agentic.agent", params=cfg.agent.params_or(AGENT_PARAMS), system_prompt="")
        native = cfg.tool_format == "native" or (cfg.tool_format == "auto" and cfg.agent.kind == "http")
        settings = EngineSettings(
            mode="agentic",
            max_turns=cfg.max_turns,
            stop=cfg.stop,
            personas=cfg.personas,
            model_keys=("user_model", "agent_model"),
        )
        mode: SimulatorMode[ModeConfig] = get_mode("agentic", "agent")  # mypy: AgentToolsConfig is a ModeConfig
        self.engine = Engine(
            settings,
            mode.build(cfg, user, None),
            ToolAgent(agent, native=native, max_calls=cfg.max_calls_per_turn),
        )

    async def run_job(self, job: Job, ctx: StageContext) -> dict[str, Any]:
        assert self.engine is not None
        goal, k = job.data
        rt = Runtime(goal, self.world.db.copy(), self.world.toolboxes[goal.task])
        seed = Seed(id=goal.id, messages=[], context={"agentic": rt}, meta={"task": goal.task, "goal_id": goal.id})
        conv = await self.engine.run_one(job.id, seed, k)
        return without_timings(finish_record(conv, rt, self.world).to_record())

    def failure(self, job: Job, error: str) -> dict[str, Any]:
        goal, k = job.data
        meta = {
            "mode": "agentic",
            "task": goal.task,
            "goal_id": goal.id,
            "sample_index": k,
            "termination_reason": "error",
            "error": error,
        }
        return Conversation(id=job.id, messages=[], meta=meta).to_record()

    def summarise(self, records: Records) -> dict[str, Any]:
        return summarise([from_record(r) for r in records], self.cfg.samples)


def from_record(rec: dict[str, Any]) -> Conversation:
    """A stored record (OpenAI form: calls with JSON-string arguments) as a conversation."""
    from ..io.formats import parse_openai

    if not rec.get("messages"):  # a conversation that ended before its first answer
        return Conversation(id=rec["id"], messages=[], meta=rec.get("meta") or {})
    return parse_openai(rec)[0]


def _rate(a: float, b: float) -> float | None:
    return round(a / b, 4) if b else None


def summarise(convs: list[Conversation], samples: int) -> dict[str, Any]:
    """Per task and overall: success, pass^1..pass^k, partial credit, call validity (parsed,
    schema-valid), tool errors, simulator-error rate, failures by side, calls and tokens per
    successful conversation, endings."""
    by_task: dict[str, list[Conversation]] = defaultdict(list)
    for c in convs:
        by_task[str(c.meta.get("task") or (c.meta.get("agentic") or {}).get("task"))].append(c)
    return {task: _task_row(cs, samples) for task, cs in sorted(by_task.items()) + [("all", list(convs))]}


def _task_row(cs: list[Conversation], samples: int) -> dict[str, Any]:
    ev = [c.meta.get("agentic") or {} for c in cs]
    ok = [bool(e.get("success")) for e in ev]
    row: dict[str, Any] = {
        "conversations": len(cs),
        "success": _rate(sum(ok), len(cs)),
        "partial_credit": _rate(sum(e.get("partial_credit", 0.0) for e in ev), len(cs)),
    }
    by_goal: dict[str, list[bool]] = defaultdict(list)
    for c, s in zip(cs, ok, strict=True):
        by_goal[str(c.meta.get("goal_id"))].append(s)
    for k in range(1, samples + 1):
        vals = [p for s in by_goal.values() if (p := pass_hat_k(s, k)) is not None]
        row[f"pass^{k}"] = round(sum(vals) / len(vals), 4) if vals else None
    return row | _call_rows(ev) | _outcome_rows(cs, ev)


def _call_rows(ev: list[dict[str, Any]]) -> dict[str, Any]:
    calls = sum(e.get("calls", 0) for e in ev)
    unparsed = sum(e.get("unparsed_calls", 0) for e in ev)
    bad_json = sum((e.get("tool_error_kinds") or {}).get("bad_json", 0) for e in ev)
    return {
        "tool_calls": calls,
        "calls_parsed": _rate(calls - bad_json, calls + unparsed),
        "calls_schema_valid": _rate(sum(e.get("valid_calls", 0) for e in ev), calls),
        "tool_errors": sum(e.get("tool_errors", 0) for e in ev),
    }


def _outcome_rows(cs: list[Conversation], ev: list[dict[str, Any]]) -> dict[str, Any]:
    wins = [(c, e) for c, e in zip(cs, ev, strict=True) if e.get("success")]
    return {
        "simulator_error_rate": _rate(sum(1 for e in ev if e.get("simulator_errors")), len(cs)),
        "simulator_errors": dict(Counter(x for e in ev for x in e.get("simulator_errors", []))),
        "failures": dict(Counter(str(e.get("failure_side") or "error") for e in ev if not e.get("success"))),
        "calls_per_success": _rate(sum(e.get("calls", 0) for _, e in wins), len(wins)),
        "tokens_per_success": _rate(sum(sum(c.meta.get("usage") or [0, 0]) for c, _ in wins), len(wins)),
        "endings": dict(Counter(str(c.meta.get("termination_reason")) for c in cs)),
    }


async def agentic_async(
    cfg: AgentToolsConfig,
    out: str | Path,
    *,
    force_new: bool = False,
    progress: bool | None = None,
    pool: BackendPool | None = None,
) -> dict[str, Any]:
    world = build_world(cfg)
    out = Path(out)
    models = {"user": cfg.user.model, "agent": cfg.agent.model}
    with RunDir(out, command="agent", config=cfg, models=models, force_new=force_new) as run:
        stage = AgenticStage(cfg, world)
        res = await run_stage(stage, run, executor=make_executor(None, pool), progress=progress)
        convs = [from_record(r) for r in res.records]
        kept = [c for c in convs if (c.meta.get("agentic") or {}).get("success") and not c.meta.get("error")]
        write_conversations(kept, out / "kept.jsonl")
        exports: dict[str, str] = {}
        if kept:
            from ..io.output import export_conversations
            from ..io.registry import exporter

            for fmt in cfg.export:  # a folder format (llamafactory) writes a folder named for it
                target = out / "exports" / (fmt if exporter(fmt).folder else f"{fmt}.jsonl")
                export_conversations(kept, fmt, target, name="agentic")
                exports[fmt] = str(target)
        warnings = list(res.warnings)
        if convs and not kept:
            warnings.append(f"agent: 0/{len(convs)} conversations reached their goal state: nothing to export")
        summary: dict[str, Any] = {
            "conversations": len(convs),
            "kept": len(kept),
            "exports": exports,
            "tasks": summarise(convs, cfg.samples),
            "warnings": warnings,
        }
        (out / "summary.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
        run.stage_done("agentic.summary", **{k: v for k, v in summary.items() if k != "warnings"})
    return summary


def agentic(cfg: AgentToolsConfig, out: str | Path, **kw: Any) -> dict[str, Any]:
    return run_sync(agentic_async(cfg, out, **kw))


__all__ = ["AgenticStage", "World", "agentic", "agentic_async", "build_world", "finish_record", "summarise"]
