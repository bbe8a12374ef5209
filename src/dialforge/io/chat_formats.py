"""Readers for open-domain chat corpora: MT-Bench-101, UltraChat, LMSYS-Chat / WildChat logs,
Alpaca-style instruction lists. Each turns one raw record into conversations and raises a
`RecordError` naming the field at fault."""

from __future__ import annotations

from typing import Any

from ..conversation import Conversation
from ..errors import RecordError
from .formats import build, check_object, list_of, meta_of, missing, text_of, type_name

# -- MT-Bench-101: {task, id, history: [{user, bot}, ...]} ----------------------------------


def parse_mtbench101(rec: Any) -> list[Conversation]:
    rec = check_object(rec)
    history = list_of(rec, "history")
    turns: list[tuple[str, str, dict[str, Any]]] = []
    for i, h in enumerate(history):
        f = f"history[{i}]"
        if not isinstance(h, dict):
            raise RecordError(f"expected an object, got {type_name(h)}", field=f)
        turns.append(("user", text_of(h, "user", f"{f}.user"), {}))
        last = i == len(history) - 1
        bot = h.get("bot")
        if last and (bot is None or bot == ""):
            continue  # the turn the evaluated model answers
        turns.append(("assistant", text_of(h, "bot", f"{f}.bot"), {}))
    meta = {"source": "mt-bench-101", "source_id": rec.get("id"), "task": rec.get("task")}
    return [build(turns, meta)]


# -- UltraChat: {id, data: [user, assistant, user, ...]} -------------------------------------


def parse_ultrachat(rec: Any) -> list[Conversation]:
    rec = check_object(rec)
    data = list_of(rec, "data")
    turns: list[tuple[str, str, dict[str, Any]]] = []
    for i, t in enumerate(data):
        if not isinstance(t, str):
            raise RecordError(f"expected a string, got {type_name(t)}", field=f"data[{i}]")
        if not t.strip():
            raise RecordError("empty message", field=f"data[{i}]")
        turns.append(("user" if i % 2 == 0 else "assistant", t, {}))
    return [build(turns, {"source": "ultrachat", "source_id": rec.get("id")})]


# -- LMSYS-Chat-1M / WildChat: {conversation: [{role, content, ...}], ...} -------------------

_CHATLOG_ROLES = {"user": "user", "human": "user", "assistant": "assistant", "gpt": "assistant", "system": "system"}


def parse_chatlog(rec: Any) -> list[Conversation]:
    """Chat logs: every other top-level field (model, language, moderation, ...) is kept in
    meta; extra message fields (language, timestamp, ...) in the message's meta."""
    rec = check_object(rec)
    conv = list_of(rec, "conversation")
    turns: list[tuple[str, str, dict[str, Any]]] = []
    for i, m in enumerate(conv):
        f = f"conversation[{i}]"
        if not isinstance(m, dict):
            raise RecordError(f"expected an object, got {type_name(m)}", field=f)
        if "role" not in m:
            raise missing(f"{f}.role", m)
        role = m["role"]
        if not isinstance(role, str) or role not in _CHATLOG_ROLES:
            raise RecordError(f"unknown role {role!r} (expected user or assistant)", field=f"{f}.role")
        text = text_of(m, "content", f"{f}.content")
        extra = {k: v for k, v in m.items() if k not in ("role", "content")}
        turns.append((_CHATLOG_ROLES[role], text, extra))
    source_id = rec.get("conversation_id", rec.get("conversation_hash", rec.get("id")))
    fields = {k: v for k, v in rec.items() if k not in ("conversation", "meta")}
    meta = {**meta_of(rec, "meta"), "source": "chatlog", "source_id": source_id, "source_fields": fields}
    return [build(turns, meta)]


# -- Alpaca / self-instruct / AlpacaEval: {instruction, input?, output?} -------------------


def alpaca_prompt(rec: dict[str, Any], instance: dict[str, Any] | None = None, field: str = "input") -> str:
    """The user turn of an instruction record: instruction, then its input (if any)."""
    prompt = text_of(rec, "instruction", "instruction")
    src = instance if instance is not None else rec
    extra = src.get("input")
    if extra is not None and not isinstance(extra, str):
        raise RecordError(f"expected a string, got {type_name(extra)}", field=field)
    return f"{prompt}\n\n{extra}" if extra and extra.strip() else prompt


def parse_alpaca(rec: Any) -> list[Conversation]:
    """Single-turn conversations from records with an `output` (self-instruct: one per
    instance). Prompt-only records are seeds, not conversations."""
    rec = check_object(rec)
    if isinstance(rec.get("instances"), list):
        out = []
        for i, inst in enumerate(rec["instances"]):
            f = f"instances[{i}]"
            if not isinstance(inst, dict):
                raise RecordError(f"expected an object, got {type_name(inst)}", field=f)
            turns: list[tuple[str, str, dict[str, Any]]] = [("user", alpaca_prompt(rec, inst, f"{f}.input"), {})]
            turns.append(("assistant", text_of(inst, "output", f"{f}.output"), {}))
            out.append(build(turns, {"source": "self-instruct", "source_id": rec.get("id")}))
        return out
    if "output" not in rec:
        raise RecordError(
            "no `output`: prompt-only records are seeds (read them with `dialforge seeds` or seeds.questions)",
            field="output",
        )
    pair: list[tuple[str, str, dict[str, Any]]] = [("user", alpaca_prompt(rec), {})]
    pair.append(("assistant", text_of(rec, "output", "output"), {}))
    extra = {k: rec[k] for k in ("generator", "dataset", "id") if k in rec}
    return [build(pair, {"source": "alpaca", **({"source_fields": extra} if extra else {})})]
