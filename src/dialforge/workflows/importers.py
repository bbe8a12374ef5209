"""Workflows from real schemas: STAR task flowcharts and ABCD agent guidelines.

STAR (`tasks/<task>.json` + `<task>_responses.json`): `graph` maps a node to its next node.
Nodes with a wizard template are agent steps. Wizard-internal nodes (`query*`,
`query_success/failure`, `available/unavailable`, `info_missing*`, trivia's
`correct/incorrect/noanswer/done`) are not said: the step before a query gets one option per
query result, each leading to that result's next node. User-answer nodes `yes`/`no` become
reference answers of the dangling yes/no question they follow. Template slots such as
`{balance:d}` are removed, since real utterances fill them with values. Nodes with no way
on are endings.

ABCD (`guidelines.json`): one workflow per subflow, one step per action in order, the
action's guideline text as what the agent says, its sub-points as reference answers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import DialforgeError
from .model import Option, Step, Workflow

_SLOT = re.compile(r"\s*\{[a-z_0-9]+(:[a-z])?\}", re.I)
USER_ANSWERS = {"yes": "Yes", "no": "No"}
_RESULTS = {
    "query_success",
    "query_failure",
    "info_missing",
    "info_missing2",
    "available",
    "unavailable",
    "correct",
    "incorrect",
    "noanswer",
    "done",
}


def _is_internal(node: str) -> bool:
    return node == "query" or node.startswith("query_") or node in _RESULTS


def _results_of(query: str, graph: dict[str, str]) -> list[str]:
    keys = [k for k in graph if k in _RESULTS]
    if query == "query_check":
        own = [k for k in keys if k in ("available", "unavailable")]
    elif query == "query_book":
        own = [k for k in keys if k in ("query_success", "query_failure")]
    else:
        has_check = "query_check" in graph.values() or "query_check" in graph
        own = [k for k in keys if not (has_check and k in ("available", "unavailable"))]
    return own


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", _SLOT.sub("", text)).strip()


def _found(value: Any) -> str:
    names: dict[type, str] = {dict: "an object", list: "a list", str: "a string"}
    return names.get(type(value), type(value).__name__)


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as e:
        raise DialforgeError(
            f"{path}: expected {what} (UTF-8 JSON), found undecodable bytes at offset {e.start}"
        ) from None
    except json.JSONDecodeError as e:
        raise DialforgeError(f"{path}:{e.lineno}: expected {what}, found invalid JSON ({e.msg})") from None


def _star_task_data(flow_path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(graph, replies) of a STAR task file, or one clear error naming the field."""
    data = _read_json(flow_path, "a STAR task (a JSON object with `graph` and `replies`)")
    if not isinstance(data, dict) or "graph" not in data:
        raise DialforgeError(f"{flow_path}: expected a STAR task (a JSON object with `graph`), found {_found(data)}")
    graph, replies = data["graph"], data.get("replies", {})
    if not isinstance(graph, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in graph.items()):
        raise DialforgeError(
            f"{flow_path}: field graph: expected an object mapping each node to its next node, found {_found(graph)}"
        )
    if not isinstance(replies, dict):
        raise DialforgeError(f"{flow_path}: field replies: expected an object node -> text, found {_found(replies)}")
    return graph, {k: v for k, v in replies.items() if isinstance(v, str)}


def import_star_task(flow_path: Path, responses_path: Path | None = None) -> Workflow:
    graph, replies = _star_task_data(flow_path)
    data = _read_json(flow_path, "a STAR task")
    texts = dict(replies)
    if responses_path and responses_path.exists():
        extra = _read_json(responses_path, "STAR responses (a JSON object node -> text)")
        if not isinstance(extra, dict):
            raise DialforgeError(f"{responses_path}: expected an object node -> text, found {_found(extra)}")
        texts.update({k: v for k, v in extra.items() if isinstance(v, str)})
    name = flow_path.stem
    # agent nodes whose template is only slots ("{message:s}") say nothing we can match:
    # they are passed through like internal nodes
    silent = {
        n
        for n in [*graph, *graph.values()]
        if not _is_internal(n) and n not in USER_ANSWERS and not _clean(texts.get(n, ""))
    }
    consumed = {
        r for q in {*graph, *graph.values()} if q.startswith("query") and q not in graph for r in _results_of(q, graph)
    }

    def expand(node: str, label: str | None, seen: frozenset[str]) -> list[tuple[str, str | None]]:
        """Agent nodes reached through `node` (following internal query/result nodes)."""
        if node in seen:
            return []
        if not _is_internal(node) and node not in silent:
            return [(node, label)]
        if node in graph:  # an internal node with a direct successor
            return expand(graph[node], label or node, seen | {node})
        if node.startswith("query"):
            return [t for r in _results_of(node, graph) for t in expand(r, r, seen | {node})]
        return []

    def targets(node: str) -> list[tuple[str, str | None]]:
        return list(dict.fromkeys(expand(graph[node], None, frozenset({node})))) if node in graph else []

    agent_nodes = [
        n
        for n in dict.fromkeys([*graph, *graph.values()])
        if not _is_internal(n) and n not in USER_ANSWERS and n not in silent
    ]
    steps: dict[str, Step] = {
        n: Step(say=_clean(texts[n]), options=[Option(answer=None, next=t, label=lab) for t, lab in targets(n)])
        for n in agent_nodes
    }
    # answer nodes nobody points to (yes/no, trivia's correct/incorrect, ...) answer the
    # first question that leads nowhere
    targeted = set(graph.values())
    orphans = [k for k in graph if k not in targeted and k not in consumed and k not in steps]
    asking = [n for n, st in steps.items() if n not in graph and st.say.endswith("?")]
    if orphans and asking:
        for o in orphans:
            for t, _ in expand(graph[o], o, frozenset()):
                steps[asking[0]].options.append(Option(answer=USER_ANSWERS.get(o), next=t, label=o))
    start = "hello" if "hello" in steps else next(iter(steps))
    # keep what is reachable from the start; report the rest
    reach, stack = {start}, [start]
    while stack:
        for opt in steps[stack.pop()].options:
            if opt.next and opt.next not in reach:
                reach.add(opt.next)
                stack.append(opt.next)
    dropped = [s for s in steps if s not in reach]
    steps = {k: v for k, v in steps.items() if k in reach}
    not_steps = _not_steps({*graph, *graph.values(), *texts}, steps, silent, set(dropped), graph)
    topic = name.replace("_", " ")
    try:
        return Workflow(
            name=name,
            topic=topic,
            agent=f"{topic} assistant",
            start=start,
            steps=steps,
            source={
                "format": "star",
                "file": flow_path.name,
                "task": data.get("task"),
                "unreachable_nodes": dropped,
                "slot_only_nodes": sorted(silent),
                "dropped": not_steps,
            },
        )
    except ValidationError as e:
        raise DialforgeError(f"{flow_path}: {e.errors()[0]['msg']}") from None


def _not_steps(
    nodes: set[str], steps: dict[str, Step], silent: set[str], unreachable: set[str], graph: dict[str, str]
) -> dict[str, str]:
    """Every node of the task (graph and reply templates) that is not a step, with why:
    nothing is dropped silently."""
    linked = {*graph, *graph.values()}
    out = {}
    for n in sorted(nodes - set(steps)):
        if n in unreachable:
            out[n] = "unreachable from the start"
        elif n in silent:
            out[n] = "slot-only template: nothing a reply could be matched against"
        elif n in USER_ANSWERS:
            out[n] = "user answer: a reference answer of the question it follows"
        elif _is_internal(n):
            out[n] = "wizard-internal query or query result: folded into the options of the step before it"
        elif n not in linked:
            out[n] = "reply template the flowchart never reaches (e.g. out_of_scope, bye)"
        else:
            out[n] = "not an agent step"
    return out


def import_star(src: str | Path) -> tuple[list[Workflow], dict[str, str]]:
    """Every task in a STAR `tasks/` folder: (workflows, {task: reason it could not import})."""
    src = Path(src)
    flows = sorted(p for p in src.glob("*.json") if not p.name.endswith("_responses.json"))
    if not flows:
        raise DialforgeError(f"{src}: no STAR task files (*.json)")
    out, failed = [], {}
    for f in flows:
        try:
            out.append(import_star_task(f, f.with_name(f.stem + "_responses.json")))
        except (DialforgeError, KeyError, ValueError, TypeError) as e:
            failed[f.stem] = str(e)
    if not out:  # e.g. an SGD folder: say what was expected, not 18 tracebacks
        first = next(iter(failed.values()))
        raise DialforgeError(f"{src}: expected a STAR tasks/ folder; no file is a STAR task ({first})")
    return out, failed


def import_abcd(src: str | Path) -> tuple[list[Workflow], dict[str, str]]:
    path = Path(src)
    if path.is_dir():
        path = path / "guidelines.json"
    if not path.exists():
        raise DialforgeError(f"{path}: ABCD guidelines.json not found")
    what = "ABCD guidelines (a JSON object: flow -> {description, subflows})"
    data = _read_json(path, what)
    if not isinstance(data, dict):
        raise DialforgeError(f"{path}: expected {what}, found {_found(data)}")
    if not any(isinstance(b, dict) and isinstance(b.get("subflows"), dict) for b in data.values()):
        raise DialforgeError(f"{path}: expected {what}, found an object without any `subflows` (a conversation file?)")
    out, failed = [], {}
    for flow, body in data.items():
        if not isinstance(body, dict) or not isinstance(body.get("subflows", {}), dict):
            failed[str(flow)] = f"field {flow}: expected an object with subflows, found {_found(body)}"
            continue
        for sub, spec in body.get("subflows", {}).items():
            name = re.sub(r"[^a-z0-9]+", "_", f"{flow} {sub}".lower()).strip("_")
            actions = [a for a in spec.get("actions", []) if a.get("text", "").strip()]
            if not actions:
                failed[name] = "no actions with guideline text"
                continue
            steps: dict[str, Step] = {}
            for i, a in enumerate(actions):
                sid = f"a{i}_" + re.sub(r"[^a-z0-9]+", "_", (a.get("button") or "step").lower()).strip("_")
                steps[sid] = Step(say=re.sub(r"\s+", " ", a["text"]).strip(), options=[])
            ids = list(steps)
            for i, sid in enumerate(ids[:-1]):
                subs = [re.sub(r"\s+", " ", s).strip() for s in actions[i].get("subtext", []) if s.strip()]
                answers: list[str | None] = list(subs) or [None]
                steps[sid].options = [Option(answer=a, next=ids[i + 1]) for a in answers]
            try:
                out.append(
                    Workflow(
                        name=name,
                        topic=f"{body.get('description', flow)}: {sub}",
                        agent="customer service agent",
                        start=ids[0],
                        steps=steps,
                        source={"format": "abcd", "flow": flow, "subflow": sub},
                    )
                )
            except ValidationError as e:
                failed[name] = e.errors()[0]["msg"]
    return out, failed


def write_workflows(workflows: list[Workflow], out: str | Path) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for wf in workflows:
        p = out / f"{wf.name}.yaml"
        p.write_text(wf.to_yaml())
        paths.append(p)
    return paths
