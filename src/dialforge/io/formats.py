"""Parsers and serialisers for each on-disk dialogue format.

Each parser turns one raw record into conversations and raises `RecordError` with the
field at fault; `reader.py` adds the file and line.
"""

from __future__ import annotations

import json
from typing import Any

from ..conversation import ROLES, Conversation, Message, ToolCall, content_id, parse_calls, parse_tools
from ..errors import RecordError

# -- OpenAI messages (canonical) ---------------------------------------------

_OPENAI_MSG_KEYS = {"role", "content", "meta", "name", "tool_calls", "tool_call_id", "function_call", "weight"}


def _text_content(content: Any, field: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        texts = []
        for j, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text" or "text" not in part:
                raise RecordError("only text content parts are supported", field=f"{field}[{j}]")
            if not isinstance(part["text"], str):
                raise RecordError(f"expected a string, got {type_name(part['text'])}", field=f"{field}[{j}].text")
            texts.append(part["text"])
        return "".join(texts)
    raise RecordError(f"expected a string, got {type_name(content)}", field=field)


def type_name(v: Any) -> str:
    """JSON's name for a value's type, for error messages."""
    if v is None:
        return "null"
    return {
        "str": "string",
        "int": "number",
        "float": "number",
        "bool": "boolean",
        "dict": "object",
        "list": "array",
    }.get(type(v).__name__, type(v).__name__)


def meta_of(obj: dict[str, Any], field: str) -> dict[str, Any]:
    """An optional `meta` object; anything but an object (or null) is a located error."""
    meta = obj.get("meta")
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise RecordError(f"expected an object, got {type_name(meta)}", field=field)
    return dict(meta)


def _check_content(content: str, field: str) -> str:
    if not content.strip():
        raise RecordError("empty message", field=field)
    return content


def check_object(rec: Any) -> dict[str, Any]:
    if not isinstance(rec, dict):
        raise RecordError(f"expected a record (a JSON object), found a JSON {type_name(rec)}")
    return rec


def missing(field: str, obj: dict[str, Any]) -> RecordError:
    """A missing field, listing the keys the object does have."""
    keys = ", ".join(map(str, list(obj)[:12])) or "none"
    return RecordError(f"missing field (the record has keys: {keys})", field=field)


def _turn_list(rec: Any, key: str) -> list[Any]:
    """The record's non-empty list of turns under `key`, or a located error."""
    rec = check_object(rec)
    if key not in rec:
        raise missing(key, rec)
    raw = rec[key]
    if not isinstance(raw, list) or not raw:
        raise RecordError("expected a non-empty list", field=key)
    return raw


def _tools_of(rec: dict[str, Any], field: str) -> list[dict[str, Any]]:
    try:
        return parse_tools(rec.get(field))
    except ValueError as e:
        raise RecordError(str(e), field=field) from None


def _calls(raw: Any, first_id: int, field: str) -> list[ToolCall]:
    try:
        return parse_calls(raw, first_id)
    except ValueError as e:
        raise RecordError(str(e), field=field) from None


def parse_openai(rec: Any) -> list[Conversation]:
    raw = _turn_list(rec, "messages")
    msgs: list[Message] = []
    n_calls = 0
    for i, m in enumerate(raw):
        f = f"messages[{i}]"
        if not isinstance(m, dict):
            raise RecordError("expected an object", field=f)
        if "role" not in m:
            raise RecordError("missing field", field=f"{f}.role")
        role = m["role"]
        if role == "function":  # OpenAI's older name for a tool result
            role = "tool"
        if not isinstance(role, str) or role not in ROLES:
            raise RecordError(f"unknown role {role!r} (expected one of {', '.join(ROLES)})", field=f"{f}.role")
        meta = meta_of(m, f"{f}.meta")
        for k in m:
            if k not in _OPENAI_MSG_KEYS:
                raise RecordError(f"unknown message field {k!r}", field=f"{f}.{k}")
        calls: list[ToolCall] = []
        for key in ("tool_calls", "function_call"):
            if m.get(key):
                if role != "assistant":
                    raise RecordError(f"only an assistant message makes tool calls (role {role!r})", field=f"{f}.{key}")
                new = _calls(m[key], n_calls + 1, f"{f}.{key}")
                calls += new
                n_calls += len(new)
        if calls and m.get("content") is None:
            content = ""
        else:
            if "content" not in m or m["content"] is None:
                raise RecordError("missing field", field=f"{f}.content")
            content = _text_content(m["content"], f"{f}.content")
            if not calls:
                _check_content(content, f"{f}.content")
        extra: dict[str, Any] = {}
        for k in ("name", "tool_call_id"):
            if m.get(k) is not None:
                if not isinstance(m[k], str):
                    raise RecordError(f"expected a string, got {type_name(m[k])}", field=f"{f}.{k}")
                extra[k] = m[k]
        if "weight" in m:
            meta["weight"] = m["weight"]
        msgs.append(Message(role=role, content=content, tool_calls=calls, meta=meta, **extra))
    meta = meta_of(rec, "meta")
    tools = _tools_of(rec, "tools")
    if "parallel_tool_calls" in rec:
        meta["parallel_tool_calls"] = rec["parallel_tool_calls"]
    cid = rec.get("id")
    if cid is not None and not isinstance(cid, str):
        cid = str(cid)
    return [Conversation(id=cid or content_id(msgs), messages=msgs, tools=tools, meta=meta)]


def to_openai(conv: Conversation) -> dict[str, Any]:
    return conv.to_record()


# -- ShareGPT (FastChat, LLaMA-Factory incl. tool calls) -----------------------

_SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
    "function_call": "assistant",
    "observation": "tool",
}
#: How LLaMA-Factory joins the results of parallel calls into one observation (its OpenAI
#: converter, src/llamafactory/data/converter.py); split again when the counts match.
LF_RESULTS_SEP = "\n</tool_response>\n<tool_response>\n"


def parse_sharegpt(rec: Any) -> list[Conversation]:
    raw = _turn_list(rec, "conversations")
    msgs: list[Message] = []
    system = rec.get("system")
    if system is not None:
        if not isinstance(system, str):
            raise RecordError("expected a string", field="system")
        if system.strip():
            msgs.append(Message(role="system", content=system))
    n_calls = 0
    last_calls: list[ToolCall] = []
    for i, m in enumerate(raw):
        f = f"conversations[{i}]"
        if not isinstance(m, dict):
            raise RecordError("expected an object", field=f)
        for k in ("from", "value"):
            if k not in m:
                raise RecordError("missing field", field=f"{f}.{k}")
        src = m["from"]
        if not isinstance(src, str) or src not in _SHAREGPT_ROLES:
            raise RecordError(f"unknown role {src!r} (expected one of {', '.join(_SHAREGPT_ROLES)})", field=f"{f}.from")
        value = m["value"]
        if not isinstance(value, str):
            raise RecordError(f"expected a string, got {type_name(value)}", field=f"{f}.value")
        _check_content(value, f"{f}.value")
        if src == "function_call":
            last_calls = _calls(value, n_calls + 1, f"{f}.value")
            n_calls += len(last_calls)
            msgs.append(Message(role="assistant", tool_calls=last_calls))
        elif src == "observation":
            parts = value.split(LF_RESULTS_SEP)
            if len(last_calls) > 1 and len(parts) == len(last_calls):
                msgs += [
                    Message(role="tool", content=p, tool_call_id=c.id) for p, c in zip(parts, last_calls, strict=True)
                ]
            else:
                msgs.append(Message(role="tool", content=value))
            last_calls = []
        else:
            msgs.append(Message(role=_SHAREGPT_ROLES[src], content=value))  # type: ignore[arg-type]
    tools = _tools_of(rec, "tools")
    meta: dict[str, Any] = {}
    for k, v in rec.items():
        if k not in ("conversations", "system", "tools", "id"):
            meta.setdefault("source_fields", {})[k] = v
    cid = rec.get("id")
    if cid is not None:
        meta["source_id"] = cid
    return [Conversation(id=content_id(msgs), messages=msgs, tools=tools, meta=meta)]


def function_call_value(m: Message) -> str:
    """A tool-call message as LLaMA-Factory's `function_call` value: {"name", "arguments"}
    (arguments an object) for one call, a list of them for parallel calls."""
    calls = [{"name": c.name, "arguments": c.arguments} for c in m.tool_calls]
    return json.dumps(calls[0] if len(calls) == 1 else calls, ensure_ascii=False)


def tools_value(conv: Conversation) -> str:
    """The tool list as LLaMA-Factory's `tools` column: a JSON string of {name, description,
    parameters} (the form of its glaive demo; every tool formatter of 0.9.x reads it). A tool
    without parameters gets an empty object schema: LLaMA-Factory reads `parameters.properties`."""
    tools = []
    for t in conv.tools:
        fn = t["function"]
        params = fn.get("parameters")
        if not isinstance(params, dict) or not isinstance(params.get("properties"), dict):
            fn = {**fn, "parameters": {"type": "object", "properties": {}, **(params or {})}}
            fn["parameters"].setdefault("properties", {})
            if not isinstance(fn["parameters"]["properties"], dict):
                fn["parameters"]["properties"] = {}
        tools.append(fn)
    return json.dumps(tools, ensure_ascii=False)


def to_sharegpt(conv: Conversation) -> dict[str, Any]:
    """ShareGPT with LLaMA-Factory's tool roles. The text of an assistant message that also
    calls tools is left out (a `function_call` turn holds only the calls); consecutive tool
    results become one observation, joined as LLaMA-Factory joins them."""
    out: dict[str, Any] = {}
    if "source_id" in conv.meta:
        out["id"] = conv.meta["source_id"]
    turns: list[dict[str, str]] = []
    for i, m in enumerate(conv.messages):
        if m.role == "system":
            if i == 0:
                out["system"] = m.content
                continue
            turns.append({"from": "system", "value": m.content})
        elif m.role == "user":
            turns.append({"from": "human", "value": m.content})
        elif m.role == "assistant":
            if m.tool_calls:
                turns.append({"from": "function_call", "value": function_call_value(m)})
            else:
                turns.append({"from": "gpt", "value": m.content})
        elif turns and turns[-1]["from"] == "observation" and conv.messages[i - 1].role == "tool":
            turns[-1]["value"] += LF_RESULTS_SEP + m.content
        else:
            turns.append({"from": "observation", "value": m.content})
    out["conversations"] = turns
    if conv.tools:
        out["tools"] = tools_value(conv)
    return out


# -- OpenAssistant message trees ------------------------------------------------

_OASST_ROLES = {"prompter": "user", "assistant": "assistant"}


def _oasst_node(node: Any, field: str) -> Message:
    if not isinstance(node, dict):
        raise RecordError("expected an object", field=field)
    for k in ("text", "role"):
        if k not in node:
            raise RecordError("missing field", field=f"{field}.{k}")
    if not isinstance(node["role"], str) or node["role"] not in _OASST_ROLES:
        raise RecordError(f"unknown role {node['role']!r} (expected prompter or assistant)", field=f"{field}.role")
    if not isinstance(node["text"], str):
        raise RecordError(f"expected a string, got {type_name(node['text'])}", field=f"{field}.text")
    _check_content(node["text"], f"{field}.text")
    return Message(
        role=_OASST_ROLES[node["role"]],
        content=node["text"],  # type: ignore[arg-type]
        meta={"message_id": node.get("message_id")},
    )


def _rank_key(node: dict[str, Any]) -> tuple[int, float]:
    rank = node.get("rank")
    return (0, float(rank)) if isinstance(rank, int | float) else (1, 0.0)


def parse_oasst(rec: Any, mode: str = "all") -> list[Conversation]:
    """Threads of one message tree.

    `all`: every root-to-leaf path, cut back to its last assistant message (a dialogue
    that ends on an unanswered user turn is not a training dialogue), duplicates removed.
    `best`: one thread following the best-ranked reply (rank 0) at each step.
    Deleted messages and their subtrees are skipped.
    """
    rec = check_object(rec)
    if "prompt" not in rec:
        raise missing("prompt", rec)
    tree_id = rec.get("message_tree_id")
    threads: list[list[Message]] = []

    def walk(node: dict[str, Any], field: str, path: list[Message]) -> None:
        msg = _oasst_node(node, field)
        path = path + [msg]
        replies = node.get("replies") or []
        if not isinstance(replies, list):
            raise RecordError("expected a list", field=f"{field}.replies")
        live = [(j, r) for j, r in enumerate(replies) if not (isinstance(r, dict) and r.get("deleted"))]
        if mode == "best" and live:
            live = [min(live, key=lambda jr: _rank_key(jr[1]))]
        if not live:
            threads.append(path)
        for j, r in live:
            walk(r, f"{field}.replies[{j}]", path)

    walk(rec["prompt"], "prompt", [])
    out: list[Conversation] = []
    seen: set[str] = set()
    for path in threads:
        while path and path[-1].role != "assistant":
            path = path[:-1]
        if not path:
            continue
        cid = content_id(path)
        if cid in seen:
            continue
        seen.add(cid)
        meta = {"source": "oasst", "message_tree_id": tree_id, "leaf_message_id": path[-1].meta.get("message_id")}
        out.append(Conversation(id=cid, messages=path, meta=meta))
    return out


def parse_oasst_best(rec: Any) -> list[Conversation]:
    return parse_oasst(rec, mode="best")


# -- helpers shared by the other readers ------------------------------------------


def text_of(obj: dict[str, Any], key: str, field: str, *, allow_empty: bool = False) -> str:
    """obj[key] as a non-empty string, or a located error naming the field."""
    if key not in obj:
        raise missing(field, obj)
    v = obj[key]
    if not isinstance(v, str):
        raise RecordError(f"expected a string, got {type_name(v)}", field=field)
    if not allow_empty:
        _check_content(v, field)
    return v


def list_of(obj: dict[str, Any], key: str, field: str | None = None) -> list[Any]:
    """obj[key] as a non-empty list, or a located error naming the field."""
    field = field or key
    if key not in obj:
        raise missing(field, obj)
    v = obj[key]
    if not isinstance(v, list) or not v:
        raise RecordError(f"expected a non-empty list, got {type_name(v) if v != [] else 'an empty list'}", field=field)
    return v


def build(turns: list[tuple[str, str, dict[str, Any]]], meta: dict[str, Any], *, merge: bool = False) -> Conversation:
    """A conversation from (role, text, message meta) turns; `merge` joins consecutive turns of
    one role (task-oriented corpora split one turn over several utterances)."""
    msgs: list[Message] = []
    for role, text, mmeta in turns:
        if merge and msgs and msgs[-1].role == role:
            msgs[-1].content += "\n" + text
            continue
        msgs.append(Message(role=role, content=text, meta=mmeta))  # type: ignore[arg-type]
    if not msgs:
        raise RecordError("no messages")
    return Conversation(id=content_id(msgs), messages=msgs, meta={k: v for k, v in meta.items() if v is not None})
