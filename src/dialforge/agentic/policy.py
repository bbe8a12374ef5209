"""The two roles of agentic self-talk on the shared engine.

`ToolAgent` (an `AssistantPolicy`): each turn it asks its model with the tools offered;
every call is executed on the conversation's own database copy, the call and its result
join the dialogue, and the model is asked again, until it answers in words (at most
`max_calls` calls a turn). Over HTTP the tools go in the request (OpenAI's tools API) and the
calls come back structured; in-process (a chat template without tool support, a small
model) the tools are listed in the system prompt and a call is a
`<tool_call>{"name": ..., "arguments": {...}}</tool_call>` block in the text.

`GoalUser` (a `UserSimulator`): a prompted customer holding a hidden goal, told to reveal
it in pieces and to end with the stop token once the agent has done what it asked.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from ..conversation import ToolCall
from ..llm.client import LLM
from ..llm.types import ChatRequest
from ..simulate.contracts import AssistantTurn, ConvState, UserTurn, completion_meta, sample_index
from ..simulate.reasons import Termination
from ..simulate.simulators import swap_roles
from .config import STOP_TOKEN
from .database import Database
from .goals import Goal
from .tools import ToolBox

AGENT_SYSTEM = (
    "You are a {domain} booking assistant talking with a customer. Use the tools to search the {domain} "
    "database and to make bookings: a booking exists only once a booking tool has confirmed it. Ask the "
    "customer for what you need, find the one option that fits, and book it with RequestType Book. Keep "
    "your replies short. Tools: {names}."
)
PARSED_TOOLS = (
    '\n\nTo call a tool, reply with only <tool_call>{{"name": "TOOL", "arguments": {{...}}}}</tool_call>; '
    "the result comes back as <tool_response>...</tool_response>. The tools (JSON schema):\n{schemas}"
)
OVER_BUDGET = "(You have made all the tool calls this turn allows: answer the customer now, in words.)"

USER_SYSTEM = (
    "You are role-playing a customer who writes to a {domain} booking assistant. {persona}"
    "{goal} Keep this to yourself and reveal it in pieces: one or two facts per message, when they "
    "are needed or asked for. Never make up other wishes, never act as the assistant. When the "
    "assistant has confirmed your booking (or cannot make it), reply with only {stop}."
)
USER_NEXT = "(Write the customer's next message: one or two short sentences, no role label.)"
USER_FIRST = "(Start the conversation: write your first message to the assistant, stating what you want.)"


@dataclass
class Runtime:
    """One conversation's tool state: its goal, its own database copy, every call made."""

    goal: Goal
    db: Database
    toolbox: ToolBox
    calls: list[dict[str, Any]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    n_ids: int = 0
    used_ids: set[str] = field(default_factory=set)

    def call_id(self, given: str | None) -> str:
        """The model's id for a call, or a fresh one where it gave none or reused one (some
        servers number calls per reply: `call_0` every turn)."""
        if given and given not in self.used_ids:
            self.used_ids.add(given)
            return given
        while True:
            self.n_ids += 1
            if (cid := f"call_{self.n_ids}") not in self.used_ids:
                self.used_ids.add(cid)
                return cid


# -- the parsed call format (in-process models) ----------------------------------------------

_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)
_FENCE = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.S)


def _as_calls(obj: Any) -> list[tuple[str, Any]] | None:
    items = obj if isinstance(obj, list) else [obj]
    out = []
    for it in items:
        if not isinstance(it, dict) or not isinstance(it.get("name"), str):
            return None
        out.append((it["name"], it.get("arguments", it.get("parameters", {}))))
    return out or None


def parse_text_calls(text: str) -> tuple[list[tuple[str, Any]], str, int]:
    """(calls as (name, arguments), the text around them, blocks that did not parse). A call
    is a `<tool_call>` block, a fenced JSON block, or a reply that is only a JSON object
    with a `name`."""
    calls: list[tuple[str, Any]] = []
    bad = 0
    blocks = _BLOCK.findall(text)
    rest = _BLOCK.sub("", text)
    if not blocks:
        stripped = text.strip()
        if stripped.startswith("{") and '"name"' in stripped:
            blocks, rest = [stripped], ""
        elif (m := _FENCE.search(text)) and '"name"' in m.group(1):
            blocks, rest = [m.group(1)], _FENCE.sub("", text)
    for b in blocks:
        try:
            got = _as_calls(orjson.loads(b))
        except orjson.JSONDecodeError:
            got = None
        if got is None:
            bad += 1
        else:
            calls += got
    return calls, rest.strip(), bad


def _calls_of(m: dict[str, Any]) -> list[ToolCall]:
    return [ToolCall.model_validate(c) for c in (m.get("meta") or {}).get("tool_calls", [])]


def _native_message(m: dict[str, Any]) -> dict[str, Any]:
    """A message for a model served with the OpenAI tools API."""
    calls = _calls_of(m)
    if calls:
        return {"role": "assistant", "content": m["content"] or None, "tool_calls": [c.to_openai() for c in calls]}
    if m["role"] == "tool":
        return {"role": "tool", "tool_call_id": m["meta"]["tool_call_id"], "content": m["content"]}
    return {"role": m["role"], "content": m["content"]}


def _text_message(m: dict[str, Any]) -> dict[str, Any]:
    """A message for a model that reads calls as `<tool_call>` text and results as user turns."""
    calls = _calls_of(m)
    if calls:
        blocks = "".join(
            f"<tool_call>{orjson.dumps({'name': c.name, 'arguments': c.arguments}).decode()}</tool_call>" for c in calls
        )
        return {"role": "assistant", "content": f"{m['content']}\n{blocks}" if m["content"] else blocks}
    if m["role"] == "tool":
        return {"role": "user", "content": f"<tool_response>{m['content']}</tool_response>"}
    return {"role": m["role"], "content": m["content"]}


class ToolAgent:
    """The agent: answers the user, calling tools on the conversation's database."""

    def __init__(self, llm: LLM, *, native: bool, max_calls: int = 4) -> None:
        self.llm = llm
        self.native = native
        self.max_calls = max_calls
        self.model_id = llm.model_id

    def system(self, rt: Runtime, offer: bool) -> str:
        names = ", ".join(rt.toolbox.by_name)
        text = AGENT_SYSTEM.format(domain=rt.goal.domain, names=names)
        if not self.native:
            schemas = "\n".join(orjson.dumps(s["function"]).decode() for s in rt.toolbox.schemas())
            text += PARSED_TOOLS.format(schemas=schemas)
        return text if offer else f"{text}\n\n{OVER_BUDGET}"

    def view(self, state: ConvState, rt: Runtime, offer: bool) -> list[dict[str, Any]]:
        """The dialogue as the agent's model reads it."""
        shown = _native_message if self.native else _text_message
        out = [{"role": "system", "content": self.system(rt, offer)}, *(shown(m) for m in state.messages)]
        if self.native:
            return out
        merged: list[dict[str, Any]] = [out[0]]
        for m in out[1:]:  # a strict template wants alternation: join a role's consecutive messages
            if merged[-1]["role"] == m["role"]:
                merged[-1] = {"role": m["role"], "content": f"{merged[-1]['content']}\n\n{m['content']}"}
            else:
                merged.append(m)
        return merged

    def _calls(self, comp: Any, rt: Runtime) -> tuple[list[tuple[str | None, str, Any]], str]:
        """(id, name, arguments) of each call, and the reply's words."""
        if self.native and comp.tool_calls:
            out = []
            for c in comp.tool_calls:
                fn = c.get("function") if isinstance(c, dict) else None
                if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                    rt.counts["unparsed_calls"] += 1
                    continue
                out.append((c.get("id") if isinstance(c.get("id"), str) else None, fn["name"], fn.get("arguments")))
            return out, comp.text
        calls, rest, bad = parse_text_calls(comp.text)
        rt.counts["unparsed_calls"] += bad
        return [(None, n, a) for n, a in calls], rest

    async def next_turn(self, state: ConvState) -> AssistantTurn:
        rt: Runtime = state.context["agentic"]
        made = 0
        usage = [0, 0]
        for rnd in range(self.max_calls + 2):
            offer = made < self.max_calls
            tools = rt.toolbox.schemas() if self.native and offer else None
            req = ChatRequest(
                self.view(state, rt, offer),
                self.llm.params,  # type: ignore[arg-type]
                sample_index=sample_index(state, rnd),
                tools=tools,
            )
            comp = (await self.llm.chat([req]))[0]
            if not comp.ok:
                return AssistantTurn(error=comp.error or "request failed")
            usage[0] += comp.usage.prompt_tokens
            usage[1] += comp.usage.completion_tokens
            calls, text = self._calls(comp, rt)
            meta = completion_meta(comp)
            if not calls:
                return AssistantTurn(text=text.strip(), meta={**meta, "usage": usage})
            if not offer:
                rt.counts["over_limit"] += 1
                return AssistantTurn(error=f"the agent kept calling tools after {self.max_calls} calls in one turn")
            made += len(calls)
            self._run_calls(state, rt, calls, text.strip(), meta)
        return AssistantTurn(error="tool-call loop did not end")  # unreachable: the last round offers no tools

    def _run_calls(
        self, state: ConvState, rt: Runtime, calls: list[tuple[str | None, str, Any]], text: str, meta: dict[str, Any]
    ) -> None:
        made: list[ToolCall] = []
        results = []
        for cid, name, raw_args in calls:
            call_id = rt.call_id(cid)
            res = rt.toolbox.execute(name, raw_args, rt.db)
            args = raw_args
            if isinstance(args, str):
                try:
                    args = orjson.loads(args) if args.strip() else {}
                except orjson.JSONDecodeError:
                    args = None
            call = ToolCall(id=call_id, name=name, arguments=args if isinstance(args, dict) else {})
            made.append(call)
            rt.counts["calls"] += 1
            rt.counts["valid_calls" if res.ok or res.error == "execution_error" else res.error or "error"] += 1
            if res.error:
                rt.counts["tool_errors"] += 1
            rt.calls.append({"name": name, "arguments": call.arguments, "ok": res.ok, "error": res.error})
            results.append((call, res))
        state.messages.append(
            {"role": "assistant", "content": text, "meta": {**meta, "tool_calls": [c.model_dump() for c in made]}}
        )
        for call, res in results:
            tmeta: dict[str, Any] = {"tool_call_id": call.id}
            if res.error:
                tmeta["tool_error"] = res.error
            state.messages.append({"role": "tool", "content": res.text(), "meta": tmeta})

    async def after_assistant_turn(self, state: ConvState) -> Termination | None:
        return None

    async def after_user_turn(self, state: ConvState, text: str) -> Termination | None:
        return None

    async def evaluate(self, state: ConvState) -> dict[str, Any]:
        return {}  # the verdict needs the termination: the stage computes it (agentic/run.py)


class GoalUser:
    """A prompted customer with a hidden goal (`state.context["agentic"].goal`)."""

    def __init__(self, llm: LLM, stop_token: str = STOP_TOKEN) -> None:
        self.llm = llm
        self.stop_token = stop_token
        self.model_id = llm.model_id

    def messages(self, state: ConvState) -> list[dict[str, str]]:
        rt: Runtime = state.context["agentic"]
        persona = f"You are {state.persona}. " if state.persona else ""
        system = USER_SYSTEM.format(
            domain=rt.goal.domain, persona=persona, goal=rt.goal.instruction(), stop=self.stop_token
        )
        said = [
            {"role": m["role"], "content": m["content"]}
            for m in state.messages
            if m["role"] in ("user", "assistant") and m["content"]  # an agent's words beside its calls too
        ]
        if not said:
            return [{"role": "system", "content": system}, {"role": "user", "content": USER_FIRST}]
        return [{"role": "system", "content": system}, *swap_roles(said, opening=USER_FIRST, instruction=USER_NEXT)]

    async def next_turn(self, state: ConvState) -> UserTurn:
        comp = await self.llm.complete(self.messages(state), sample_index=sample_index(state))
        if not comp.ok:
            return UserTurn(stop="error", meta={"error": comp.error})
        meta = {"model": comp.model, "usage": [comp.usage.prompt_tokens, comp.usage.completion_tokens]}
        return UserTurn(text=comp.text.strip(), meta=meta, instructions=(USER_NEXT, USER_FIRST))


ToolFormat = Literal["auto", "native", "parsed"]
