"""Every reader and writer in one place: name, what it reads or writes, how it is detected.

`dialforge formats` prints this table; `--from NAME` picks a reader; `auto` takes the first
reader whose `detect` accepts the file's first record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator

from ..conversation import Conversation
from . import chat_formats, formats, oasst_messages, tod_formats


@dataclass(frozen=True)
class Format:
    name: str
    description: str
    parse: Callable[[Any], list[Conversation]] | None = None
    detect: Callable[[dict[str, Any]], bool] | None = None
    write: bool = False
    seeds: bool = False
    # a reader of the whole file at once (records link across the file), filling the report
    read_file: Callable[[Path, Any], list[Conversation]] | None = None

    @property
    def readable(self) -> bool:
        return bool(self.parse or self.read_file or self.name == "mapping")

    @property
    def kinds(self) -> str:
        parts = ["read"] if self.readable else []
        if self.write:
            parts.append("write")
        if self.seeds:
            parts.append("seeds")
        return ",".join(parts)


def _list(rec: dict[str, Any], key: str) -> bool:
    return isinstance(rec.get(key), list)


def _first(rec: dict[str, Any], key: str) -> Any:
    v = rec.get(key)
    return v[0] if isinstance(v, list) and v else None


def _turns_speaker(rec: dict[str, Any]) -> str:
    t = _first(rec, "turns")
    return t.get("speaker", "") if isinstance(t, dict) and isinstance(t.get("speaker"), str) else ""


def _is_convlab3(rec: dict[str, Any]) -> bool:
    return _list(rec, "turns") and ("dataset" in rec or _turns_speaker(rec) in ("user", "system"))


def _is_sgd(rec: dict[str, Any]) -> bool:
    return _list(rec, "turns") and ("services" in rec or _turns_speaker(rec) in ("USER", "SYSTEM"))


def _read_hf(path: Path, report: Any) -> list[Conversation]:
    from .hf import load_hf

    convs = load_hf(path)
    report.records = report.conversations = len(convs)
    return convs


FORMATS: list[Format] = [
    Format(
        "openai",
        "OpenAI messages: {id?, messages: [{role, content, tool_calls?, tool_call_id?}], tools?, meta?} "
        "(canonical JSONL; `export --to openai` writes OpenAI's fine-tuning format, meta in a sidecar)",
        formats.parse_openai,
        lambda r: _list(r, "messages"),
        write=True,
    ),
    Format(
        "sharegpt",
        "ShareGPT / FastChat / LLaMA-Factory: {conversations: [{from, value}], system?, tools?}; "
        "function_call / observation turns are tool calls and results",
        formats.parse_sharegpt,
        lambda r: _list(r, "conversations"),
        write=True,
    ),
    Format(
        "chatlog",
        "LMSYS-Chat-1M / WildChat logs: {conversation: [{role, content}], ...}, other fields kept as meta",
        chat_formats.parse_chatlog,
        lambda r: _list(r, "conversation"),
    ),
    Format(
        "oasst",
        "OpenAssistant message trees: every root-to-leaf thread ending on an assistant reply",
        formats.parse_oasst,
        lambda r: "message_tree_id" in r or isinstance(r.get("prompt"), dict),
    ),
    Format(
        "oasst-best",
        "OpenAssistant message trees: one thread per tree along the best-ranked replies",
        formats.parse_oasst_best,
    ),
    Format(
        "oasst-messages",
        "OpenAssistant flat message export: [{message_id, parent_message_id, role, text}] rebuilt into trees",
        detect=oasst_messages.is_oasst_message,
        read_file=oasst_messages.read_oasst_messages,
    ),
    Format(
        "mtbench101",
        "MT-Bench-101: {task, id, history: [{user, bot}]}",
        chat_formats.parse_mtbench101,
        lambda r: _list(r, "history"),
    ),
    Format(
        "ultrachat",
        "UltraChat: {id, data: [user, assistant, ...]}",
        chat_formats.parse_ultrachat,
        lambda r: _list(r, "data"),
    ),
    Format(
        "convlab3",
        "ConvLab-3 unified format: {dataset, dialogue_id, goal: {description}, turns: [{speaker, utterance}]}",
        tod_formats.parse_convlab3,
        _is_convlab3,
    ),
    Format(
        "sgd",
        "Schema-Guided Dialogue and MultiWOZ 2.2: {dialogue_id, services, turns: [{speaker: USER|SYSTEM, utterance}]}",
        tod_formats.parse_sgd,
        _is_sgd,
    ),
    Format(
        "multiwoz21",
        "MultiWOZ 2.1 original: {NAME: {goal: {message}, log: [{text}]}}, turns alternate from the user",
        tod_formats.parse_multiwoz21,
        lambda r: _list(r, "log"),
    ),
    Format(
        "taskmaster",
        "Taskmaster-1/2/3: {conversation_id, instruction_id?, utterances: [{index, speaker, text}]}",
        tod_formats.parse_taskmaster,
        lambda r: _list(r, "utterances"),
    ),
    Format(
        "star",
        "STAR dialogues: {DialogueID, Events: [{Agent, Action, Text}], Scenario: {UserTask}}",
        tod_formats.parse_star,
        lambda r: _list(r, "Events"),
    ),
    Format(
        "abcd",
        "ABCD conversations: {convo_id, scenario: {flow, subflow}, original: [[speaker, text]]}",
        tod_formats.parse_abcd,
        lambda r: _list(r, "original"),
    ),
    Format(
        "alpaca",
        "Alpaca / self-instruct / AlpacaEval: {instruction, input?, output?}; single-turn with output, else seeds",
        chat_formats.parse_alpaca,
        lambda r: "instruction" in r and ("output" in r or _list(r, "instances")),
        seeds=True,
    ),
    Format(
        "hf",
        "Hugging Face datasets folder (save_to_disk): id, messages (typed, tool calls structured), tools, meta",
        write=True,
        read_file=_read_hf,
    ),
    Format("mapping", "any JSON/JSONL via --messages/--role-field/--content-field/--roles (or a YAML mapping)"),
    Format(
        "prompts",
        "seed prompts: JSONL strings or {text|prompt|question|instruction+input|data|turns}, or --text-field",
        seeds=True,
    ),
    Format("text", "seed prompts: a plain text file, one per line", seeds=True),
    Format(
        "llamafactory",
        "LLaMA-Factory dataset folder: data file + dataset_info.json entry declaring only its columns (export)",
        write=True,
    ),
    Format(
        "trl",
        "TRL SFTTrainer: {messages (OpenAI's shape), tools: JSON string} (export)",
        write=True,
    ),
]
BY_NAME = {f.name: f for f in FORMATS}
READ_FORMATS: tuple[str, ...] = ("auto", *(f.name for f in FORMATS if f.readable))
#: export-only formats (`dialforge export`): a folder with its entry, a consumer's own shape
EXPORT_ONLY = ("llamafactory", "trl")
WRITE_FORMATS: tuple[str, ...] = tuple(f.name for f in FORMATS if f.write and f.name not in EXPORT_ONLY)


def check_read_format(name: str) -> str:
    """A config's reader name: `auto`, a READ_FORMATS name, or `mapping:FILE`; checked when the
    config is read, so a typo fails before any work starts."""
    if name.startswith("mapping:") or name in READ_FORMATS:
        return name
    raise ValueError(f"unknown format {name!r} (expected one of {', '.join(READ_FORMATS)})")


#: A config field naming the reader of a file: checked as the config is validated.
ReadFormat = Annotated[str, AfterValidator(check_read_format)]

#: Record shapes that hold prompts, not conversations.
SEED_KEYS = ("text", "prompt", "question", "instruction", "data", "turns")


def detect_record(rec: dict[str, Any]) -> str | None:
    """The first reader whose shape matches this record, or None."""
    for f in FORMATS:
        if f.detect is not None and f.detect(rec):
            return f.name
    return None


def describe() -> list[tuple[str, str, str]]:
    """(name, kinds, description) for every format, for `dialforge formats` and the README."""
    return [(f.name, f.kinds, f.description) for f in FORMATS]
