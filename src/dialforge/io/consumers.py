"""One writer per training consumer, each producing only what that consumer accepts.

- `openai`: OpenAI's chat fine-tuning format: per message only role, content, name,
  tool_calls, tool_call_id (weight where the source had one); top level only messages and
  tools. dialforge's ids and meta go to a sidecar (`OUT.meta.jsonl`, one line per line).
- `trl`: `messages` as above plus `tools` as a JSON string (TRL's `SFTTrainer` parses it and
  passes it to the chat template; a string keeps Arrow from merging the tool schemas of
  different rows into one struct with nulls).
- `llamafactory` (and `sharegpt`): ShareGPT with `function_call` / `observation` turns and a
  `tools` JSON string, as LLaMA-Factory's SharegptDatasetConverter reads them.
- `hf`: typed features, tool calls structured.

A conversation a consumer cannot take (no assistant reply, roles out of its order) is left out
with its reason counted (`Skips`); nothing exported holds a local path or this host's name
(`scrub`).
"""

from __future__ import annotations

import functools
import os
import re
import socket
from collections import Counter
from pathlib import Path
from typing import Any

from ..conversation import Conversation, Message
from .formats import to_sharegpt

#: OpenAI's function names
FUNCTION_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
# an absolute path inside text: /a/b..., ~/..., C:\... (not the path part of a URL)
_PATH_RE = re.compile(r"(?<![\w:/.\-])(?:~/|/|[A-Za-z]:\\)(?:[\w.\-+@~]+[/\\])+[\w.\-+@~]*")


@functools.cache
def hostnames() -> set[str]:
    """This machine's names (looked up on first use: `getfqdn` may ask DNS, so not when the
    format registry is imported)."""
    names = {socket.gethostname()}
    try:
        names.add(socket.getfqdn())
    except OSError:
        pass
    return {n for n in names if n and n not in ("localhost", "localhost.localdomain")}


def __getattr__(name: str) -> Any:
    if name == "HOSTNAMES":  # the old constant, computed on first use
        return hostnames()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _basename(match: re.Match[str]) -> str:
    name = re.split(r"[/\\]", match.group(0).rstrip("/\\"))[-1]
    return name or "<path>"


def scrub(value: Any) -> Any:
    """`value` with every absolute local path cut to its last part (a model's
    `/home/u/.cache/dialforge/tiny-model-v1` becomes `tiny-model-v1`) and this machine's host
    name replaced by `<host>`; for meta that leaves the machine."""
    if isinstance(value, str):
        if value in hostnames():
            return "<host>"
        out = _PATH_RE.sub(_basename, value)
        for h in hostnames():
            if len(h) >= 4 and h in out:
                out = out.replace(h, "<host>")
        return out
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def local_leaks(text: str) -> list[str]:
    """Absolute local paths (this machine's home, cwd, temp dir) and host names in `text`."""
    found = []
    for p in {str(Path.home()), os.getcwd()}:
        if len(p) > 1 and p + "/" in text:
            found.append(p)
    for h in hostnames():
        if len(h) >= 4 and re.search(rf"(?<![\w.-]){re.escape(h)}(?![\w-])", text):
            found.append(h)
    return found


class Skips(Counter[str]):
    """Conversations a writer left out, by reason."""

    def summary(self) -> str:
        return ", ".join(f"{n} {why}" for why, n in self.most_common())


# -- OpenAI chat fine-tuning -------------------------------------------------------------


def _openai_message(m: Message) -> dict[str, Any]:
    out = m.to_openai(meta=False)
    w = m.meta.get("weight")
    if m.role == "assistant" and w in (0, 1) and not isinstance(w, bool):
        out["weight"] = w
    return out


def openai_problem(conv: Conversation) -> str | None:
    """Why OpenAI's fine-tuning would refuse this conversation, or None."""
    if not any(m.role == "assistant" for m in conv.messages):
        return "without an assistant message"
    ids = {c.id for c in conv.tool_calls}
    for m in conv.messages:
        if m.role == "tool" and m.tool_call_id not in ids:
            return "with a tool result answering no call"
    names = {t["function"]["name"] for t in conv.tools}
    if any(not FUNCTION_NAME.fullmatch(n) for n in names):
        return "with a tool name OpenAI refuses (1-64 of a-z, A-Z, 0-9, _ and -)"
    if names and any(c.name not in names for c in conv.tool_calls):
        return "calling a tool their tools do not list"
    return None


def to_openai_ft(conv: Conversation) -> dict[str, Any]:
    rec: dict[str, Any] = {"messages": [_openai_message(m) for m in conv.messages]}
    if conv.tools:
        rec["tools"] = conv.tools
    return rec


def to_trl(conv: Conversation) -> dict[str, Any]:
    import json

    rec = to_openai_ft(conv)
    if conv.tools:
        rec["tools"] = json.dumps(conv.tools, ensure_ascii=False)
    return rec


def sidecar(conv: Conversation, line: int) -> dict[str, Any]:
    """dialforge's part of one exported line: id, meta and message meta (paths scrubbed)."""
    rec: dict[str, Any] = {"line": line, "id": scrub(conv.id), "meta": scrub(conv.meta)}
    if any(m.meta for m in conv.messages):
        rec["message_meta"] = [scrub(m.meta) for m in conv.messages]
    return rec


def sidecar_path(out: Path) -> Path:
    """`OUT.meta.jsonl` beside `OUT.jsonl`."""
    stem = out.name[: -len(out.suffix)] if out.suffix in (".jsonl", ".json") else out.name
    return out.with_name(stem + ".meta.jsonl")


# -- LLaMA-Factory ---------------------------------------------------------------------------

#: LLaMA-Factory's sharegpt tags as dataset_info.json declares them (what its loader defaults
#: to); the export writes these and the check reads an entry against them.
LF_TAGS = {
    "role_tag": "from",
    "content_tag": "value",
    "user_tag": "human",
    "assistant_tag": "gpt",
    "observation_tag": "observation",
    "function_tag": "function_call",
    "system_tag": "system",
}


def llamafactory_problem(rec: dict[str, Any]) -> str | None:
    """Why LLaMA-Factory's SharegptDatasetConverter would skip this record, or None: after an
    optional leading system turn, human/observation at even positions, gpt/function_call at
    odd ones, an even count."""
    turns = rec["conversations"]
    for k, t in enumerate(turns):
        want = ("human", "observation") if k % 2 == 0 else ("gpt", "function_call")
        if t["from"] not in want:
            return f"with roles out of LLaMA-Factory's order ({t['from']} at position {k})"
    if len(turns) % 2:
        return "with an odd number of turns"
    if not turns:
        return "without a turn"
    return None


def to_llamafactory(conv: Conversation) -> dict[str, Any]:
    """ShareGPT as LLaMA-Factory reads it; trailing turns after the last assistant reply are cut
    (a training example ends on one); no dialforge meta."""
    msgs = list(conv.messages)
    while msgs and not (msgs[-1].role == "assistant" and not msgs[-1].tool_calls):
        msgs.pop()
    rec = to_sharegpt(conv.model_copy(update={"messages": msgs, "meta": {}}))
    return rec


# -- HF datasets ----------------------------------------------------------------------------


def hf_features() -> Any:
    from datasets import Features, List, Value

    call = {
        "id": Value("string"),
        "type": Value("string"),
        "function": {"name": Value("string"), "arguments": Value("string")},
    }
    message = {
        "role": Value("string"),
        "content": Value("string"),
        "name": Value("string"),
        "tool_calls": List(call),
        "tool_call_id": Value("string"),
    }
    return Features(
        {
            "id": Value("string"),
            "messages": List(message),
            "tools": Value("string"),  # JSON (OpenAI's tools schema): schemas differ per row
            "meta": Value("string"),
            "message_meta": List(Value("string")),
        }
    )


def to_hf_row(conv: Conversation, *, scrub_meta: bool = True) -> dict[str, Any]:
    import orjson

    clean = scrub if scrub_meta else (lambda v: v)
    return {
        "id": conv.id,
        "messages": [
            {
                "role": m.role,
                "content": m.content,
                "name": m.name,
                "tool_calls": [c.to_openai() for c in m.tool_calls],
                "tool_call_id": m.tool_call_id,
            }
            for m in conv.messages
        ],
        "tools": orjson.dumps(conv.tools).decode() if conv.tools else None,
        "meta": orjson.dumps(clean(conv.meta)).decode(),
        "message_meta": [orjson.dumps(clean(m.meta)).decode() for m in conv.messages],
    }
