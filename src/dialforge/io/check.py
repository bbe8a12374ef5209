"""`dialforge check FILE --for CONSUMER`: a consumer's own rules as a validator, one problem a
line (file:line, field), so a user finds what a trainer would refuse before uploading.

- `openai`: OpenAI's chat fine-tuning format (the checks of its data-preparation notebook,
  with the documented tool format: `tool_calls`, `tool_call_id`, top-level `tools`).
- `trl`: what `SFTTrainer` takes: `messages` in the same shape, `tools` a list or a JSON string.
- `llamafactory`: a dataset folder (or its data file): every `dataset_info.json` entry's columns
  exist in the file (LLaMA-Factory 0.9.3 fails with KeyError on a declared column no row has),
  turns in its order, `function_call` and `tools` values as its formatters parse them.
- `hf`: a `save_to_disk` folder with dialforge's typed features.

Every consumer: no absolute local path or host name of this machine.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DialforgeError
from .consumers import _PATH_RE, FUNCTION_NAME, LF_TAGS, local_leaks, sidecar_path
from .formats import type_name

CONSUMERS = ("openai", "trl", "llamafactory", "hf")
#: At most this many problems are listed (all are counted).
MAX_LISTED = 200


@dataclass(frozen=True)
class Problem:
    path: str
    line: int | None
    field: str
    message: str
    index: int | None = None

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        if self.line is None and self.index is not None:
            where += f"[record {self.index}]"
        return f"{where}: field '{self.field}': {self.message}" if self.field else f"{where}: {self.message}"


# -- reading with line numbers ----------------------------------------------------------------


def _records(path: Path) -> Iterator[tuple[int, Any, str]]:
    """(line, record, raw text) of a JSON Lines file (streamed) or a JSON array (read whole, as
    LLaMA-Factory reads it; the line where each element starts); broken JSON or bytes that
    are not UTF-8 raise `_Broken` with the line."""
    with path.open("rb") as f:
        array = f.read(4096).lstrip().startswith(b"[")
    if not array:
        with path.open("rb") as f:
            for i, braw in enumerate(f, 1):
                try:
                    raw = braw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise _Broken(i, f"not UTF-8 text (byte {e.start + 1} of the line)") from None
                if not raw.strip():
                    continue
                try:
                    yield i, json.loads(raw), raw
                except json.JSONDecodeError as e:
                    raise _Broken(i, f"broken JSON ({e.msg})") from None
        return
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _Broken(data.count(b"\n", 0, e.start) + 1, "not UTF-8 text") from None
    dec = json.JSONDecoder()
    pos = text.index("[") + 1
    line = 1 + text.count("\n", 0, pos)
    counted = pos
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text) or text[pos] == "]":
            return
        line += text.count("\n", counted, pos)
        counted = pos
        try:
            rec, end = dec.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise _Broken(line + text.count("\n", pos, e.pos), f"broken JSON ({e.msg})") from None
        yield line, rec, text[pos:end]
        pos = end


class _Broken(Exception):
    def __init__(self, line: int, message: str) -> None:
        self.line, self.message = line, message


class _Sink:
    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.problems: list[Problem] = []
        self.count = 0

    def add(self, line: int | None, field: str, message: str) -> None:
        self.count += 1
        if len(self.problems) < MAX_LISTED:
            self.problems.append(Problem(self.path, line, field, message))

    def leaks(self, line: int | None, raw: str) -> None:
        for leak in local_leaks(raw):
            self.add(line, "", f"holds {leak!r}, a local path or host name of this machine")


# -- OpenAI / TRL -----------------------------------------------------------------------------

_OPENAI_TOP = {"messages", "tools", "parallel_tool_calls"}
_OPENAI_MSG = {"role", "content", "name", "tool_calls", "function_call", "tool_call_id", "weight"}
_OPENAI_ROLES = ("system", "user", "assistant", "tool", "function")
#: OpenAI's limit on tools per request
MAX_TOOLS = 128


def _check_tools(s: _Sink, line: int, tools: Any, field: str) -> set[str]:
    names: set[str] = set()
    if not isinstance(tools, list):
        s.add(line, field, f"expected a list of tools, got {type_name(tools)}")
        return names
    if len(tools) > MAX_TOOLS:
        s.add(line, field, f"{len(tools)} tools (at most {MAX_TOOLS})")
    for j, t in enumerate(tools):
        f = f"{field}[{j}]"
        if not isinstance(t, dict) or t.get("type") != "function" or not isinstance(t.get("function"), dict):
            s.add(line, f, 'expected {"type": "function", "function": {...}}')
            continue
        fn = t["function"]
        if not isinstance(fn.get("name"), str) or not fn["name"]:
            s.add(line, f"{f}.function.name", "missing or not a string")
        else:
            if not FUNCTION_NAME.fullmatch(fn["name"]):
                s.add(line, f"{f}.function.name", f"{fn['name']!r}: a function name is 1-64 of a-z, A-Z, 0-9, _ and -")
            names.add(fn["name"])
        if "parameters" in fn and not isinstance(fn["parameters"], dict):
            s.add(line, f"{f}.function.parameters", f"expected a JSON schema object, got {type_name(fn['parameters'])}")
        extra = set(t) - {"type", "function"}
        if extra:
            s.add(line, f, f"unknown keys {sorted(extra)}")
    return names


def _check_call(s: _Sink, line: int, c: Any, f: str, ids: set[str], names: set[str] | None) -> None:
    if not isinstance(c, dict):
        s.add(line, f, f"expected an object, got {type_name(c)}")
        return
    if not isinstance(c.get("id"), str) or not c["id"]:
        s.add(line, f"{f}.id", "missing or not a string")
    elif c["id"] in ids:
        s.add(line, f"{f}.id", f"duplicate call id {c['id']!r}")
    else:
        ids.add(c["id"])
    if c.get("type") != "function":
        s.add(line, f"{f}.type", 'expected "function"')
    fn = c.get("function")
    if not isinstance(fn, dict):
        s.add(line, f"{f}.function", "missing or not an object")
        return
    name = fn.get("name")
    if not isinstance(name, str) or not name:
        s.add(line, f"{f}.function.name", "missing or not a string")
    elif names is not None and name not in names:
        s.add(line, f"{f}.function.name", f"calls {name!r}, which is not in the record's tools")
    args = fn.get("arguments")
    if not isinstance(args, str):
        s.add(line, f"{f}.function.arguments", f"expected a JSON string, got {type_name(args)}")
        return
    try:
        parsed = json.loads(args)
    except json.JSONDecodeError:
        s.add(line, f"{f}.function.arguments", "not valid JSON")
        return
    if not isinstance(parsed, dict):
        s.add(line, f"{f}.function.arguments", f"expected a JSON object, got {type_name(parsed)}")


def _chat_tools(s: _Sink, line: int, rec: dict[str, Any], consumer: str) -> set[str] | None:
    """The names of the record's tools (None without tools), its tools and top keys checked."""
    if consumer == "openai":
        for k in rec:
            if k not in _OPENAI_TOP:
                s.add(line, k, "not a key of the fine-tuning format (top level: messages, tools, parallel_tool_calls)")
    if "parallel_tool_calls" in rec and not isinstance(rec["parallel_tool_calls"], bool):
        s.add(line, "parallel_tool_calls", "expected true or false")
    tools = rec.get("tools")
    if tools is None:
        return None
    if consumer == "trl" and isinstance(tools, str):
        try:
            tools = json.loads(tools)
        except json.JSONDecodeError:
            s.add(line, "tools", "a JSON string that does not parse")
            tools = []
    return _check_tools(s, line, tools, "tools")


def _check_content(s: _Sink, line: int, m: dict[str, Any], f: str, role: str) -> None:
    calling = bool(m.get("tool_calls")) or bool(m.get("function_call"))
    content = m.get("content")
    if calling and role == "assistant" and content is None:
        return
    if not isinstance(content, str):
        s.add(line, f"{f}.content", f"expected a string, got {type_name(content)}")
    elif not content.strip() and not calling:
        s.add(line, f"{f}.content", "empty")


def _check_weight(s: _Sink, line: int, m: dict[str, Any], f: str, role: str) -> None:
    if "weight" not in m:
        return
    if role != "assistant":
        s.add(line, f"{f}.weight", "only assistant messages have a weight")
    elif m["weight"] not in (0, 1) or isinstance(m["weight"], bool):
        s.add(line, f"{f}.weight", f"expected 0 or 1, got {m['weight']!r}")


class _Calls:
    """The calls of one record so far: their ids, the ids answered, the tools' names."""

    def __init__(self, names: set[str] | None) -> None:
        self.names = names
        self.ids: set[str] = set()
        self.answered: set[str] = set()

    def check_made(self, s: _Sink, line: int, m: dict[str, Any], f: str, role: str) -> None:
        calls = m.get("tool_calls")
        if calls is None:
            return
        if role != "assistant":
            s.add(line, f"{f}.tool_calls", "only an assistant message makes tool calls")
        elif not isinstance(calls, list) or not calls:
            s.add(line, f"{f}.tool_calls", "expected a non-empty list")
        else:
            for j, c in enumerate(calls):
                _check_call(s, line, c, f"{f}.tool_calls[{j}]", self.ids, self.names)

    def check_answer(self, s: _Sink, line: int, m: dict[str, Any], f: str, role: str) -> None:
        if role != "tool":
            if "tool_call_id" in m:
                s.add(line, f"{f}.tool_call_id", "only a tool message has a tool_call_id")
            return
        tid = m.get("tool_call_id")
        if not isinstance(tid, str) or not tid:
            s.add(line, f"{f}.tool_call_id", "a tool message needs the id of the call it answers")
        elif tid not in self.ids:
            s.add(line, f"{f}.tool_call_id", f"{tid!r} answers no earlier tool call")
        elif tid in self.answered:
            s.add(line, f"{f}.tool_call_id", f"{tid!r} is answered twice")
        else:
            self.answered.add(tid)


def _check_chat_message(s: _Sink, line: int, m: Any, f: str, calls: _Calls) -> str | None:
    """One message checked; its role, or None where it has none of OpenAI's."""
    if not isinstance(m, dict):
        s.add(line, f, f"expected an object, got {type_name(m)}")
        return None
    for k in m:
        if k not in _OPENAI_MSG:
            s.add(line, f"{f}.{k}", "not a message key of the fine-tuning format")
    role = m.get("role")
    if role not in _OPENAI_ROLES:
        s.add(line, f"{f}.role", f"unknown role {role!r}")
        return None
    _check_content(s, line, m, f, role)
    if "name" in m and not isinstance(m["name"], str):
        s.add(line, f"{f}.name", "expected a string")
    _check_weight(s, line, m, f, role)
    calls.check_made(s, line, m, f, role)
    calls.check_answer(s, line, m, f, role)
    return str(role)


def _check_chat_record(s: _Sink, line: int, rec: Any, consumer: str) -> None:
    if not isinstance(rec, dict):
        s.add(line, "", f"expected a JSON object, got {type_name(rec)}")
        return
    calls = _Calls(_chat_tools(s, line, rec, consumer))
    msgs = rec.get("messages")
    if not isinstance(msgs, list) or not msgs:
        s.add(line, "messages", "missing or not a non-empty list")
        return
    roles = [_check_chat_message(s, line, m, f"messages[{i}]", calls) for i, m in enumerate(msgs)]
    if "assistant" not in roles:
        s.add(line, "messages", "no assistant message (nothing to train on)")


def _check_chat_file(path: Path, consumer: str) -> _Sink:
    s = _Sink(path)
    try:
        for line, rec, raw in _records(path):
            _check_chat_record(s, line, rec, consumer)
            s.leaks(line, raw)
    except _Broken as e:
        s.add(e.line, "", e.message)
    side = sidecar_path(path)
    if side.exists() and side != path:
        ss = _Sink(side)
        for i, raw in enumerate(side.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            ss.leaks(i, raw)
            for m in _PATH_RE.finditer(raw):
                ss.add(i, "", f"holds an absolute path {m.group(0)!r}")
        s.problems += ss.problems
        s.count += ss.count
    return s


# -- LLaMA-Factory ----------------------------------------------------------------------------


def _check_lf_tools(s: _Sink, line: int, value: Any, field: str) -> None:
    if value is None or value == "":
        return
    if not isinstance(value, str):
        s.add(line, field, f"expected a JSON string, got {type_name(value)}")
        return
    try:
        tools = json.loads(value)
    except json.JSONDecodeError:
        s.add(line, field, "not valid JSON (LLaMA-Factory raises 'Invalid JSON format in tool description')")
        return
    if not isinstance(tools, list):
        s.add(line, field, f"expected a JSON list of tools, got {type_name(tools)}")
        return
    for j, t in enumerate(tools):
        fn = t.get("function") if isinstance(t, dict) and t.get("type") == "function" else t
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            s.add(line, f"{field}[{j}]", "a tool needs a name")
            continue
        params = fn.get("parameters")
        if not isinstance(params, dict) or not isinstance(params.get("properties"), dict):
            s.add(line, f"{field}[{j}].parameters.properties", "missing (LLaMA-Factory's tool formatters read it)")


def _check_lf_call(s: _Sink, line: int, value: str, field: str) -> None:
    try:
        calls = json.loads(value)
    except json.JSONDecodeError:
        s.add(line, field, "not valid JSON (LLaMA-Factory raises 'Invalid JSON format in function message')")
        return
    for c in calls if isinstance(calls, list) else [calls]:
        if not isinstance(c, dict) or not isinstance(c.get("name"), str) or "arguments" not in c:
            s.add(line, field, 'expected {"name": ..., "arguments": {...}} or a list of them')
            return


def _check_lf_turn(s: _Sink, line: int, t: Any, f: str, k: int, tags: dict[str, str]) -> None:
    """Turn `k` after the system turn: LLaMA-Factory's role for its position, a string value."""
    if not isinstance(t, dict) or tags["role_tag"] not in t or tags["content_tag"] not in t:
        s.add(line, f, f"expected {{{tags['role_tag']}, {tags['content_tag']}}}")
        return
    want = (tags["user_tag"], tags["observation_tag"]) if k % 2 == 0 else (tags["assistant_tag"], tags["function_tag"])
    role, value = t[tags["role_tag"]], t[tags["content_tag"]]
    if role not in want:
        s.add(
            line,
            f"{f}.{tags['role_tag']}",
            f"{role!r} at this position: LLaMA-Factory skips the example (expects {' or '.join(want)})",
        )
    if not isinstance(value, str):
        s.add(line, f"{f}.{tags['content_tag']}", f"expected a string, got {type_name(value)}")
    elif role == tags["function_tag"]:
        _check_lf_call(s, line, value, f"{f}.{tags['content_tag']}")


def _check_lf_turns(s: _Sink, line: int, turns: list[Any], msg_col: str, tags: dict[str, str]) -> None:
    start = 0
    if turns and isinstance(turns[0], dict) and turns[0].get(tags["role_tag"]) == tags["system_tag"]:
        start = 1
    body = turns[start:]
    for k, t in enumerate(body):
        _check_lf_turn(s, line, t, f"{msg_col}[{k + start}]", k, tags)
    if len(body) % 2 or not body:
        why = "LLaMA-Factory skips an example that does not end on an assistant turn"
        s.add(line, msg_col, f"{len(body)} turns: {why}")


def _check_lf_record(s: _Sink, line: int, rec: dict[str, Any], columns: dict[str, str], tags: dict[str, str]) -> None:
    msg_col = columns.get("messages", "conversations")
    turns = rec.get(msg_col)
    if not isinstance(turns, list):
        s.add(line, msg_col, "missing or not a list")
        return
    _check_lf_turns(s, line, turns, msg_col, tags)
    if "tools" in columns:
        _check_lf_tools(s, line, rec.get(columns["tools"]), columns["tools"])
    system = columns.get("system")
    if system is not None and rec.get(system) is not None and not isinstance(rec[system], str):
        s.add(line, system, "expected a string")


def _check_lf_data(s: _Sink, data: Path, entry: dict[str, Any], name: str) -> None:
    columns = entry.get("columns") or {"messages": "conversations"}
    tags = {**LF_TAGS, **(entry.get("tags") or {})}
    seen: set[str] = set()
    n = 0
    try:
        for line, rec, raw in _records(data):
            n += 1
            s.leaks(line, raw)
            if not isinstance(rec, dict):
                s.add(line, "", f"expected a JSON object, got {type_name(rec)}")
                continue
            seen |= {k for k, v in rec.items() if v is not None}
            _check_lf_record(s, line, rec, columns, tags)
    except _Broken as e:
        s.add(e.line, "", e.message)
        return
    for role, col in columns.items():
        if role != "messages" and col not in seen and n:
            s.add(
                None,
                f"{name}.columns.{role}",
                f"declares column {col!r}, which no record of {data.name} has "
                f"(LLaMA-Factory fails with KeyError: {col!r})",
            )


def _check_llamafactory(path: Path) -> _Sink:
    folder = path if path.is_dir() else path.parent
    info_path = folder / "dataset_info.json"
    if not info_path.exists():
        if path.is_dir():
            raise DialforgeError(f"{path}: no dataset_info.json (a LLaMA-Factory dataset folder has one)")
        s = _Sink(path)
        _check_lf_data(s, path, {"formatting": "sharegpt"}, path.name)
        return s
    s = _Sink(info_path)
    try:
        info = json.loads(info_path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        s.add(getattr(e, "lineno", None), "", f"broken JSON ({getattr(e, 'msg', e)})")
        return s
    if not isinstance(info, dict):
        s.add(1, "", "expected an object of dataset entries")
        return s
    for name, entry in info.items():
        if not isinstance(entry, dict) or "file_name" not in entry:
            s.add(None, name, "an entry needs file_name")
            continue
        if path.is_file() and entry["file_name"] != path.name:
            continue
        if entry.get("formatting", "alpaca") != "sharegpt":
            s.add(None, f"{name}.formatting", "dialforge checks sharegpt entries only")
            continue
        data = folder / entry["file_name"]
        if not data.exists():
            s.add(None, f"{name}.file_name", f"{data} does not exist")
            continue
        sub = _Sink(data)
        _check_lf_data(sub, data, entry, name)
        s.problems += sub.problems
        s.count += sub.count
    return s


# -- HF ------------------------------------------------------------------------------------------


def _check_hf(path: Path) -> _Sink:
    from datasets import load_from_disk

    from .consumers import hf_features

    s = _Sink(path)
    try:
        ds = load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as e:
        raise DialforgeError(f"{path}: not a saved HF dataset ({e})") from None
    want = hf_features()
    for k, v in want.items():
        if k not in ds.features:
            s.add(None, k, "missing column")
        elif ds.features[k] != v:
            s.add(None, k, f"type {ds.features[k]} (expected {v})")
    for i, row in enumerate(ds):
        raw = json.dumps(row, ensure_ascii=False)
        for leak in local_leaks(raw):
            s.problems.append(Problem(str(path), None, "", f"holds {leak!r}, a local path or host name", index=i))
            s.count += 1
        for m in _PATH_RE.finditer(str(row.get("meta") or "") + "".join(row.get("message_meta") or [])):
            s.problems.append(Problem(str(path), None, "meta", f"holds an absolute path {m.group(0)!r}", index=i))
            s.count += 1
    return s


def check(path: str | Path, consumer: str) -> tuple[list[Problem], int]:
    """(problems listed, problems found) of a file or folder for a consumer."""
    path = Path(path)
    if consumer not in CONSUMERS:
        raise DialforgeError(f"unknown consumer {consumer!r} (expected one of {', '.join(CONSUMERS)})")
    if not path.exists():
        raise DialforgeError(f"{path}: file not found")
    if consumer == "llamafactory":
        s = _check_llamafactory(path)
    elif consumer == "hf":
        s = _check_hf(path)
    else:
        if path.is_dir():
            raise DialforgeError(f"{path}: a folder; --for {consumer} checks a JSON Lines file")
        s = _check_chat_file(path, consumer)
    return s.problems, s.count
