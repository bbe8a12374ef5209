"""The data model: a conversation is a list of role-tagged messages plus provenance meta.

Tool use is data: an assistant message carries `tool_calls` (id, name, JSON arguments), a
`tool` message the `tool_call_id` of the call it answers, and the conversation the tools it
offered (`tools`, OpenAI's function schema: `{"type": "function", "function": {name,
description, parameters}}`). Files of older versions (a call as assistant text with
`meta.kind = "tool_call"`, the tool list as a string in `meta.tools`) are converted as they
are read (`_upgrade_legacy`).
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Role = Literal["system", "user", "assistant", "tool"]
ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")


def stable_hash(*parts: Any, length: int = 16) -> str:
    """Hex digest of JSON-serialisable parts; the same parts give the same id in every run."""
    blob = orjson.dumps(list(parts), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(blob).hexdigest()[:length]


class ToolCall(BaseModel):
    """One function call an assistant message makes; `arguments` is the parsed JSON object."""

    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)

    def arguments_json(self) -> str:
        return orjson.dumps(self.arguments).decode()

    def to_openai(self) -> dict[str, Any]:
        """OpenAI's form: `arguments` is a JSON string."""
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments_json()}}


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    content: str = ""
    name: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)

    @property
    def is_tool_call(self) -> bool:
        """An assistant message that calls tools (it is part of the assistant's turn, not a turn)."""
        return bool(self.tool_calls) or self.meta.get("kind") == "tool_call"

    def to_openai(self, *, meta: bool = True) -> dict[str, Any]:
        """OpenAI chat shape; an assistant message that only calls tools has no `content`."""
        out: dict[str, Any] = {"role": self.role}
        if self.content or not self.tool_calls:
            out["content"] = self.content
        if self.name is not None:
            out["name"] = self.name
        if self.tool_calls:
            out["tool_calls"] = [c.to_openai() for c in self.tool_calls]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if meta and self.meta:
            out["meta"] = self.meta
        return out


class Conversation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    messages: list[Message]
    tools: list[dict[str, Any]] = Field(default_factory=list)
    meta: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _id_not_empty(cls, v: str) -> str:
        if not v:
            raise ValueError("conversation id must not be empty")
        return v

    @model_validator(mode="after")
    def _upgrade_legacy(self) -> Conversation:
        upgrade_legacy(self)
        return self

    @classmethod
    def from_messages(
        cls,
        messages: list[Message] | list[dict[str, Any]],
        meta: dict[str, Any] | None = None,
        id: str | None = None,
        tools: list[dict[str, Any]] | None = None,
    ) -> Conversation:
        """Build a conversation whose id is a hash of its content unless one is given."""
        msgs = [m if isinstance(m, Message) else Message.model_validate(m) for m in messages]
        cid = id or content_id(msgs)
        return cls(id=cid, messages=msgs, meta=meta or {}, tools=tools or [])

    # -- views -------------------------------------------------------------
    def turns(self, role: str) -> list[Message]:
        return [m for m in self.messages if m.role == role]

    @property
    def n_user_turns(self) -> int:
        return sum(1 for m in self.messages if m.role == "user")

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [c for m in self.messages for c in m.tool_calls]

    def dialogue(self) -> list[Message]:
        """Messages without the system prompt."""
        return [m for m in self.messages if m.role != "system"]

    def role_order_problems(self) -> list[str]:
        """Why this conversation is not a clean user/assistant alternation. Tool calls and
        tool results sit inside an assistant turn, so they are not counted as turns."""
        problems: list[str] = []
        seq = [m for m in self.messages if m.role != "tool" and not m.is_tool_call]
        for i, m in enumerate(seq):
            if m.role == "system" and i != 0:
                problems.append(f"system message at position {i}")
        body = [m for m in seq if m.role != "system"]
        if not body:
            return problems + ["no user or assistant messages"]
        if body[0].role != "user":
            problems.append("does not start with a user turn")
        for i in range(1, len(body)):
            if body[i].role == body[i - 1].role:
                problems.append(f"two {body[i].role} turns in a row at position {i}")
                break
        return problems

    def to_record(self) -> dict[str, Any]:
        """Canonical JSON Lines record (OpenAI `messages` shape, with dialforge's id and meta)."""
        rec: dict[str, Any] = {"id": self.id, "messages": [m.to_openai() for m in self.messages]}
        if self.tools:
            rec["tools"] = self.tools
        if self.meta:
            rec["meta"] = self.meta
        return rec

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_record())


def content_id(messages: list[Message]) -> str:
    """A hash of roles and texts (and tool calls, where a message has them: a message without
    any hashes as it did before tool calls were data, so existing ids stay)."""
    return stable_hash(
        [
            [m.role, m.content, [[c.name, c.arguments] for c in m.tool_calls]] if m.tool_calls else [m.role, m.content]
            for m in messages
        ]
    )


# -- tools and calls in their common spellings --------------------------------------------


def tool_schema(tool: Any) -> dict[str, Any]:
    """A tool in OpenAI's schema, from OpenAI's form or the flat {name, description,
    parameters} of glaive / LLaMA-Factory. ValueError when it is neither."""
    if isinstance(tool, dict) and tool.get("type") == "function" and isinstance(tool.get("function"), dict):
        fn = tool["function"]
    elif isinstance(tool, dict) and "name" in tool:
        fn = tool
    else:
        raise ValueError("a tool is {type: function, function: {name, parameters}} or {name, parameters}")
    if not isinstance(fn.get("name"), str) or not fn["name"]:
        raise ValueError("a tool needs a name (a non-empty string)")
    return {"type": "function", "function": dict(fn)}


def parse_tools(raw: Any) -> list[dict[str, Any]]:
    """A tool list (a list, or a JSON string of one, as LLaMA-Factory's `tools` column holds
    it) in OpenAI's schema; an empty string or null is no tools. ValueError when malformed."""
    if raw is None or raw == "":
        return []
    if isinstance(raw, str):
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise ValueError(f"not JSON ({e})") from None
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list):
        raise ValueError("expected a list of tools")
    return [tool_schema(t) for t in raw]


def parse_call(raw: Any, call_id: str) -> ToolCall:
    """A call from OpenAI's {id, type, function: {name, arguments}} (arguments a JSON string
    or object) or the {name, arguments} of glaive / LLaMA-Factory. ValueError when malformed."""
    if not isinstance(raw, dict):
        raise ValueError("a tool call is an object")
    fn: dict[str, Any] = raw["function"] if isinstance(raw.get("function"), dict) else raw
    name = fn.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("a tool call needs a name (a non-empty string)")
    args = fn.get("arguments", fn.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = orjson.loads(args) if args.strip() else {}
        except orjson.JSONDecodeError:
            raise ValueError(f"the arguments of {name!r} are not JSON: {args[:60]!r}") from None
    if not isinstance(args, dict):
        raise ValueError(f"the arguments of {name!r} are not a JSON object")
    cid = raw.get("id") if isinstance(raw.get("id"), str) and raw.get("id") else call_id
    return ToolCall(id=cid, name=name, arguments=args)


def parse_calls(raw: Any, first_id: int) -> list[ToolCall]:
    """One call or a list of them (a JSON string of either, too); ids `call_N` from `first_id`
    where the source gives none."""
    if isinstance(raw, str):
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise ValueError(f"a tool call is JSON ({e})") from None
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise ValueError("an empty list of tool calls")
    return [parse_call(c, f"call_{first_id + j}") for j, c in enumerate(items)]


def link_results(messages: list[Message]) -> None:
    """Give each tool result without a `tool_call_id` the id of the call it answers: the
    unanswered calls of the last assistant message that made calls, in order."""
    pending: list[str] = []
    for m in messages:
        if m.role == "assistant" and m.tool_calls:
            pending = [c.id for c in m.tool_calls]
        elif m.role == "tool":
            if m.tool_call_id is None and pending:
                m.tool_call_id = pending[0]
            if m.tool_call_id in pending:
                pending.remove(m.tool_call_id)


def upgrade_legacy(conv: Conversation) -> None:
    """Older files: a call as assistant text with `meta.kind = "tool_call"` (OpenAI's
    `tool_calls` list or glaive's {name, arguments} as JSON text), `meta.tool_call_id` and
    `meta.name` on messages, the tool list in `meta.tools` (a JSON string or a list). Text
    that does not parse stays as it was."""
    n_calls = len(conv.tool_calls)
    for m in conv.messages:
        if m.meta.get("kind") == "tool_call" and not m.tool_calls:
            try:
                m.tool_calls = parse_calls(m.content, n_calls + 1)
            except ValueError:
                continue
            n_calls += len(m.tool_calls)
            m.content = ""
            m.meta.pop("kind")
        for k in ("tool_call_id", "name"):
            if isinstance(m.meta.get(k), str) and getattr(m, k) is None:
                setattr(m, k, m.meta.pop(k))
    if "tools" in conv.meta and not conv.tools:
        try:
            conv.tools = parse_tools(conv.meta["tools"])
            del conv.meta["tools"]
        except ValueError:
            pass
    if any(m.role == "tool" and m.tool_call_id is None for m in conv.messages):
        link_results(conv.messages)
