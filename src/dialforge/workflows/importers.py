"""Workflows from real schemas: STAR task flowcharts and ABCD agent guidelines.

STAR (`tasks/<task>.json` + `<task>_responses.json`, Mosig et al. 2020): `graph` maps a node
to its next node; branches are implicit. The paper's flowcharts have four kinds of node,
and each becomes part of the workflow:
- wizard responses (a `replies` template) are steps. Template slots such as `{balance:d}`
  are removed, since real utterances fill them with values; a template that is only a slot
  (`{question:s}`) becomes a placeholder step (`[the question]`).
- API calls (`query`, `query_check`, `query_book`) are tool steps, as in the SGD importer
  (`source.tool_steps`: step -> API); their results (`query_success/failure`,
  `available/unavailable`, `info_missing*`) label the tool step's options.
- user answers `yes`/`no` become reference answers of the yes/no question they answer: the
  question a positive result leads to when the answer books (yes -> `query_book`), else the
  one yes/no question the flowchart leaves without a way on (`anything_else` last). A `done`
  node (the user's "that is all", which ends a loop: trip_directions' `done ->
  trip_instructions_done`) is a third answer of that question wherever it occurs, so the
  steps after it stay reachable; a detour the loop's other answer leads to goes back to the
  question (inferred).
- trivia's verdicts on the user's answer (`correct/incorrect/noanswer`) label the options of
  the step that asks the fetched question; `done` is the "no" of its "continue playing?"
  questions, whose "yes" fetches the next question (not in the graph: what the recorded
  dialogues do; listed in `source.inferred_edges`). A node that only the graph's keys name
  and that extends a step's name (`ride_provide_booking_status_update`) follows that step.
Every other node and reply template is listed in `source.dropped` with why (reply templates
the flowchart does not link: out_of_scope, bye, optional questions). Nodes with no way on
are endings.

ABCD (`guidelines.json`): one workflow per subflow, one step per action in order, the
action's guideline text as what the agent says, its sub-points as reference answers. A
sub-point that ends the conversation (`[End Conversation]`, "end the conversation") is an
ending option of its step, wherever the step is (`source.endings`); an action without text
is listed in `source.dropped`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import DialforgeError
from .model import Option, Step, Workflow

_SLOT = re.compile(r"\s*(['\"]?)\{[a-z_0-9]+(:[a-z])?\}\1", re.I)
_SLOT_NAME = re.compile(r"\{([a-z_0-9]+)(:[a-z])?\}", re.I)
USER_ANSWERS = {"yes": "Yes", "no": "No"}
DONE = "done"  # trivia: the user is done playing (the "no" of "continue playing?")
VERDICTS = ("correct", "incorrect", "noanswer")  # trivia: the wizard's verdict on an answer
RESULTS = ("available", "unavailable", "query_success", "query_failure", "info_missing", "info_missing2")
POSITIVE = ("available", "query_success")
TOOL_SAY = {
    "query_check": "One moment, let me check whether that is available.",
    "query_book": "One moment, I will make the booking.",
}
TOOL_SAY_DEFAULT = "One moment, let me look that up."
GENERIC_QUESTION = "anything_else"


def _is_query(node: str) -> bool:
    return node == "query" or (node.startswith("query_") and node not in RESULTS)


def _is_user_side(node: str) -> bool:
    return node in USER_ANSWERS or node == DONE or node in VERDICTS


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


def _slot_say(text: str) -> str:
    """A placeholder for a template that is only a slot: `{question:s}` -> `[the question]`."""
    names = [m.group(1).replace("_", " ") for m in _SLOT_NAME.finditer(text)]
    return "[" + " and ".join(f"the {n}" for n in names) + "]"


@dataclass
class _StarBuild:
    """One STAR task's graph turned into steps, with an account of every node."""

    name: str
    graph: dict[str, str]
    texts: dict[str, str]
    steps: dict[str, Step] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)
    tool_steps: dict[str, str] = field(default_factory=dict)
    inferred: list[str] = field(default_factory=list)
    slot_only: list[str] = field(default_factory=list)

    @property
    def nodes(self) -> list[str]:
        return list(dict.fromkeys([*self.graph, *self.graph.values()]))

    def dangling(self, question: bool) -> list[str]:
        """Steps the graph gives no way on (questions: those ending in `?`), in graph order."""
        return [
            n
            for n in self.nodes
            if n in self.steps
            and n not in self.graph
            and not self.steps[n].options
            and self.steps[n].say.endswith("?") == question
        ]

    def build(self) -> None:
        for n in self.nodes:
            if _is_query(n):
                self._tool_step(n)
            elif n not in RESULTS and not _is_user_side(n):
                self._agent_step(n)
        self._attach_yes_no()
        self._attach_trivia()
        self._attach_follow_ups()

    def _agent_step(self, n: str) -> None:
        text = self.texts.get(n, "")
        say = _clean(text)
        if not say and text:
            say = _slot_say(text)
            self.slot_only.append(n)
        if not say:
            self.dropped[n] = "no reply template: nothing the agent could say"
            return
        nxt = self.graph.get(n)
        self.steps[n] = Step(say=say, options=[Option(next=nxt)] if nxt else [])

    def _results(self, query: str) -> list[str]:
        """The result nodes that branch after `query`: a check owns available/unavailable,
        a query the graph gives a direct successor owns none, the others share the rest."""
        if query in self.graph:
            return []
        keys = [k for k in self.graph if k in RESULTS]
        checks = [k for k in keys if k in ("available", "unavailable")]
        rest = [k for k in keys if k not in checks]
        if query == "query_check":
            return checks or rest
        check_owns_rest = not checks and "query_check" in self.nodes and "query_check" not in self.graph
        return [] if check_owns_rest else rest

    def _tool_step(self, q: str) -> None:
        results = self._results(q)
        if q in self.graph:
            options = [Option(next=self.graph[q])]
        else:
            options = [Option(next=self.graph[r], label=r) for r in results]
        for r in results:
            self.dropped[r] = f"query result: labels the option of tool step {q} it leads through"
        self.steps[q] = Step(say=TOOL_SAY.get(q, TOOL_SAY_DEFAULT), options=options)
        self.tool_steps[q] = self.name

    def _answered_question(self) -> str | None:
        """The yes/no question `yes`/`no` answer; see the module docstring."""
        asking = self.dangling(question=True)
        if self.graph.get("yes") == "query_book":
            after_positive = [self.graph[r] for r in POSITIVE if r in self.graph and self.graph[r] in asking]
            if after_positive:
                return after_positive[0]
        specific = [n for n in asking if n != GENERIC_QUESTION]
        return next(iter(specific or asking), None)

    def _attach_yes_no(self) -> None:
        """`yes`/`no` (and `done` where no trivia verdict claims it: trip_directions' "I have
        arrived") are the reference answers of the question they answer, wherever it is."""
        answers = [a for a in USER_ANSWERS if a in self.graph]
        done = DONE in self.graph and not any(v in self.graph for v in VERDICTS)
        if done:
            answers.append(DONE)
        if not answers:
            return
        question = self._answered_question()
        for a in answers:
            said = USER_ANSWERS.get(a) or _clean(self.texts.get(a, "")) or a.capitalize()
            if question is None:
                self.dropped[a] = "user answer with no yes/no question left to answer"
                continue
            self.steps[question].options.append(Option(answer=said, next=self.graph[a], label=a))
            self.dropped[a] = f"user answer: the reference answer {said!r} of step {question}"
        if question is not None:
            self._attach_detours(question)

    def _attach_detours(self, question: str) -> None:
        """A question that loops on one answer (trip_directions: "Can I proceed?" yes -> the
        next step, asked again) takes the other answer through a detour (the detailed
        instruction) that the graph leaves with no way on: the recorded dialogues go back to
        the question, so the detour does too (listed in `source.inferred_edges`)."""
        opts = self.steps[question].options
        if not any(o.next == question for o in opts):
            return
        for o in opts:
            t = o.next
            if t and t != question and t in self.steps and t not in self.graph and not self.steps[t].options:
                if not self.steps[t].say.endswith("?"):
                    self.steps[t].options.append(Option(next=question, label="continue"))
                    self.inferred.append(f"{t} --any reply--> {question}")

    def _attach_trivia(self) -> None:
        verdicts = [v for v in VERDICTS if v in self.graph]
        fetched = [self.graph[q] for q in self.nodes if _is_query(q) and self.graph.get(q) in self.steps]
        if verdicts and fetched:
            asker = fetched[0]
            query = next(q for q in self.nodes if _is_query(q) and self.graph.get(q) == asker)
            self.steps[asker].options = [Option(next=self.graph[v], label=v) for v in verdicts]
            for v in verdicts:
                self.dropped[v] = f"the wizard's verdict on the user's answer: labels an option of step {asker}"
            if DONE in self.graph:
                self._attach_done(query)

    def _attach_done(self, query: str) -> None:
        asking = [n for n in self.dangling(question=True) if n != GENERIC_QUESTION]
        for n in asking:
            self.steps[n].options = [
                Option(answer="Yes", next=query, label="continue"),
                Option(answer="No", next=self.graph[DONE], label=DONE),
            ]
            self.inferred.append(f"{n} --Yes--> {query}")
        self.dropped[DONE] = f"user answer: the reference answer 'No' of steps {', '.join(asking)}"

    def _attach_follow_ups(self) -> None:
        """A step only the graph's keys name follows the stranded step whose name it extends."""
        targets = set(self.graph.values())
        for n in list(self.steps):
            if n in targets or n == "hello" or n not in self.graph:
                continue
            before = [d for d in self.steps if d != n and n.startswith(d + "_") and not self.steps[d].options]
            if before:
                self.steps[before[0]].options.append(Option(next=n, label="follow-up"))
                self.inferred.append(f"{before[0]} --any reply--> {n}")

    def keep_reachable(self, start: str) -> None:
        reach, stack = {start}, [start]
        while stack:
            for opt in self.steps[stack.pop()].options:
                if opt.next and opt.next not in reach:
                    reach.add(opt.next)
                    stack.append(opt.next)
        for n in [s for s in self.steps if s not in reach]:
            del self.steps[n]
            self.tool_steps.pop(n, None)
            self.dropped[n] = "unreachable from the start"

    def account_for_templates(self) -> None:
        linked = set(self.nodes)
        for n in self.texts:
            if n not in linked and n not in self.steps:
                self.dropped[n] = "reply template the flowchart does not link (out_of_scope, bye, optional wording)"


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
    b = _StarBuild(name, graph, texts)
    b.build()
    if not b.steps:
        raise DialforgeError(f"{flow_path}: field graph: no node with a reply template")
    start = "hello" if "hello" in b.steps else next(iter(b.steps))
    b.keep_reachable(start)
    b.account_for_templates()
    topic = name.replace("_", " ")
    try:
        return Workflow(
            name=name,
            topic=topic,
            agent=f"{topic} assistant",
            start=start,
            steps=b.steps,
            source={
                "format": "star",
                "file": flow_path.name,
                "task": data.get("task"),
                "tool_steps": b.tool_steps,
                "inferred_edges": b.inferred,
                "slot_only_nodes": sorted(b.slot_only),
                "dropped": dict(sorted(b.dropped.items())),
            },
        )
    except ValidationError as e:
        raise DialforgeError(f"{flow_path}: {e.errors()[0]['msg']}") from None


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
            try:
                out.append(_abcd_workflow(name, flow, sub, body, spec))
            except ValueError as e:  # a pydantic ValidationError is a ValueError
                failed[name] = e.errors()[0]["msg"] if isinstance(e, ValidationError) else str(e)
    return out, failed


def _abcd_workflow(name: str, flow: str, sub: str, body: dict[str, Any], spec: dict[str, Any]) -> Workflow:
    """One subflow: a step per action with guideline text, its sub-points as reference answers."""
    actions = [a for a in spec.get("actions", []) if a.get("text", "").strip()]
    if not actions:
        raise ValueError("no actions with guideline text")
    steps: dict[str, Step] = {}
    for i, a in enumerate(actions):
        sid = f"a{i}_" + re.sub(r"[^a-z0-9]+", "_", (a.get("button") or "step").lower()).strip("_")
        steps[sid] = Step(say=re.sub(r"\s+", " ", a["text"]).strip(), options=[])
    ids = list(steps)
    ending_points: list[str] = []
    for i, sid in enumerate(ids[:-1]):
        subs = [re.sub(r"\s+", " ", s).strip() for s in actions[i].get("subtext", []) if s.strip()]
        steps[sid].options = _abcd_options(subs, ids[i + 1])
        ending_points += [f"{sid}#{j}" for j, o in enumerate(steps[sid].options) if o.end]
    dropped = {
        f"action {i}": "no guideline text: nothing the agent could say"
        for i, a in enumerate(spec.get("actions", []))
        if not a.get("text", "").strip()
    }
    return Workflow(
        name=name,
        topic=f"{body.get('description', flow)}: {sub}",
        agent="customer service agent",
        start=ids[0],
        steps=steps,
        source={"format": "abcd", "flow": flow, "subflow": sub, "endings": ending_points, "dropped": dropped},
    )


_ABCD_END = re.compile(r"\[end conversation\]|\bend the conversation\b", re.I)


def _abcd_options(subs: list[str], nxt: str) -> list[Option]:
    """A sub-point that ends the conversation (`[End Conversation]`: the customer cannot
    return the item) is an ending wherever it occurs, not a way on; one that also says "head
    to the next step" is both; a step whose points all end still leads on (the other case)."""
    out: list[Option] = []
    for a in subs:
        ends = bool(_ABCD_END.search(a))
        if not ends or "next step" in a.lower():
            out.append(Option(answer=a, next=nxt))
        if ends:
            out.append(Option(answer=a, end=a, label="end_conversation"))
    if not any(o.next for o in out):
        out.append(Option(answer=None, next=nxt))
    return out


def write_workflows(workflows: list[Workflow], out: str | Path) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for wf in workflows:
        p = out / f"{wf.name}.yaml"
        p.write_text(wf.to_yaml())
        paths.append(p)
    return paths
