"""Workflows: directed graphs of agent steps. Each step has the agent's utterance and the
reference client answers; an answer leads to a next step or to an ending reply. A step with
no options is itself an ending.

YAML:
    name: buy_longsword
    topic: buy a longsword
    agent: shop keeper
    start: greet
    steps:
      greet:
        say: Good day, how can I help you?
        options:
          - answer: I want to buy a longsword
            next: budget
          - answer: I am just browsing
            end: Let me know if you need anything.
      budget:
        say: What is your budget?
        options:
          - answer: null            # any reply
            next: done
      done:
        say: Here is your longsword. Glad to be of service, goodbye!
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..config import format_validation_error
from ..errors import ConfigError
from ..io.yaml_files import read_yaml


class Option(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer: str | None = Field(None, description="reference client answer; null matches any reply")
    next: str | None = None
    end: str | None = Field(None, description="the agent's ending reply")
    label: str | None = None

    @model_validator(mode="after")
    def _one_target(self) -> Option:
        if (self.next is None) == (self.end is None):
            raise ValueError("an option needs exactly one of `next` or `end`")
        return self


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")

    say: str
    options: list[Option] = Field(default_factory=list)

    @property
    def is_ending(self) -> bool:
        return not self.options


class Node(BaseModel):
    """A tracker node: a step, or an option's ending reply (id `step#i`)."""

    id: str
    say: str
    ending: bool


class Workflow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    topic: str = ""
    description: str = Field("", description="the agent's task in a sentence, e.g. 'Help the user book a ride.'")
    agent: str = "assistant"
    start: str
    steps: dict[str, Step]
    source: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_graph(self) -> Workflow:
        if self.start not in self.steps:
            raise ValueError(f"start step {self.start!r} is not defined")
        for sid, step in self.steps.items():
            for i, o in enumerate(step.options):
                if o.next is not None and o.next not in self.steps:
                    raise ValueError(f"step {sid!r} option {i}: next step {o.next!r} is not defined")
        seen = self._reachable()
        unreachable = [s for s in self.steps if s not in seen]
        if unreachable:
            raise ValueError(f"step {unreachable[0]!r} is unreachable from {self.start!r}")
        if not any(s.is_ending or any(o.end for o in s.options) for s in self.steps.values()):
            raise ValueError("the workflow has no ending (a step without options or an option with `end`)")
        return self

    def _reachable(self) -> set[str]:
        seen = {self.start}
        stack = [self.start]
        while stack:
            for o in self.steps[stack.pop()].options:
                if o.next and o.next not in seen:
                    seen.add(o.next)
                    stack.append(o.next)
        return seen

    # -- tracker view ------------------------------------------------------------------
    @cached_property
    def nodes(self) -> dict[str, Node]:
        out = {}
        for sid, step in self.steps.items():
            out[sid] = Node(id=sid, say=step.say, ending=step.is_ending)
            for i, o in enumerate(step.options):
                if o.end:
                    out[f"{sid}#{i}"] = Node(id=f"{sid}#{i}", say=o.end, ending=True)
        return out

    def children(self, node_id: str) -> list[str]:
        if node_id not in self.steps:
            return []
        return list(
            dict.fromkeys(o.next if o.next else f"{node_id}#{i}" for i, o in enumerate(self.steps[node_id].options))
        )

    def next_said(self, node_id: str) -> list[str]:
        """The nodes an agent utterance after `node_id` may match: its children, and through a
        step no real utterance matches also that step's children: a tool step
        (`source.tool_steps`: an API call, which a human agent makes silently) or a slot-only
        placeholder (`source.slot_only_nodes`: `[the question]`, said in the data's own words)."""
        skip = {*(self.source.get("tool_steps") or {}), *(self.source.get("slot_only_nodes") or [])}
        out = list(self.children(node_id))
        for k in out:  # grows while we walk: through chains of such steps (a query, then its result)
            if k in skip:
                out.extend(g for g in self.children(k) if g not in out)
        return out

    @cached_property
    def max_depth(self) -> int:
        """Nodes on the longest path from the start, in linear time: a depth-first search
        drops the edges that close a cycle (back edges), and the longest path of what is
        left (a DAG) is found in reverse post-order. Exact for acyclic workflows; with
        cycles, each cycle is walked once around. Iterative: a 3,000-step chain is fine."""
        order: list[str] = []  # post-order
        state: dict[str, int] = {self.start: 1}  # 1 on the stack, 2 done
        dag: dict[str, list[str]] = {}
        stack: list[tuple[str, list[str], int]] = [(self.start, self.children(self.start), 0)]
        while stack:
            node, kids, i = stack.pop()
            if i < len(kids):
                stack.append((node, kids, i + 1))
                c = kids[i]
                if state.get(c) != 1:  # an edge to a node on the stack closes a cycle
                    dag.setdefault(node, []).append(c)
                if c not in state:
                    state[c] = 1
                    stack.append((c, self.children(c), 0))
            else:
                state[node] = 2
                order.append(node)
        depth: dict[str, int] = {}
        for node in order:  # children before parents
            depth[node] = 1 + max((depth[c] for c in dag.get(node, [])), default=0)
        return depth[self.start]

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json", exclude_defaults=False), sort_keys=False, allow_unicode=True)


def load_workflow(path: str | Path) -> Workflow:
    p = Path(path)
    data = read_yaml(p, "workflow file")
    try:
        return Workflow.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, str(p))) from None


def load_workflows(path: str | Path) -> list[Workflow]:
    p = Path(path)
    files = sorted(p.glob("*.yaml")) + sorted(p.glob("*.yml")) if p.is_dir() else [p]
    if not files:
        raise ConfigError(f"{p}: no workflow files (*.yaml)")
    return [load_workflow(f) for f in files]


def draw(wf: Workflow) -> str:
    """The workflow as indented text, each step once (later visits shown as references)."""
    lines = [f"{wf.name}: {wf.topic} (agent: {wf.agent}; {len(wf.steps)} steps, max depth {wf.max_depth})"]
    shown: set[str] = set()
    todo: list[tuple[str, int]] = [(wf.start, 0)]  # iterative: deep chains never recurse
    while todo:
        sid, indent = todo.pop()
        pad = "  " * indent
        if sid in shown:
            lines.append(f"{pad}-> [{sid}] (see above)")
            continue
        shown.add(sid)
        step = wf.steps[sid]
        lines.append(f"{pad}[{sid}] {step.say!r}" + ("  (ending)" if step.is_ending else ""))
        later: list[tuple[str, int]] = []
        for o in step.options:
            ans = repr(o.answer) if o.answer is not None else "(any reply)"
            if o.end:
                lines.append(f"{pad}  {ans} => ending: {o.end!r}")
            else:
                lines.append(f"{pad}  {ans} => [{o.next}]")
                later.append((o.next or "", indent + 2))
        todo.extend(reversed(later))
    return "\n".join(lines)
