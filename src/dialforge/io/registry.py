"""Every format in one place: its reader, its writers and its seed rule, how it is detected.

`dialforge formats` prints this table; `--from NAME` picks a reader; `auto` takes the first
reader whose `detect` accepts the file's first record; `convert --to NAME` takes its `write`,
`export --to NAME` its `export`; a seed file's record gives the prompt its format's `seed`
rule says. Every list of names (READ_FORMATS, WRITE_FORMATS, EXPORT_FORMATS, the pipeline's
`export:` type `ExportFormat`) derives from FORMATS: adding a format is a module and one
entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator

from ..conversation import Conversation
from ..errors import DialforgeError
from . import chat_formats, consumers, formats, oasst_messages, tod_formats
from .hf import load_hf
from .llamafactory import write_llamafactory
from .prompts import PROMPT_FIELDS, SEED_KEYS, SeedRule, first_user_turn
from .report import ReadReport
from .writers import HF_WRITER, Export, Writer, array_writer, as_export, chat_export, jsonl_writer


@dataclass(frozen=True)
class Format:
    """One format: `parse` reads a record (or `read_file` a whole file whose records link
    across it), `detect` recognises a record, `write` is `convert`'s writer, `export` is
    `dialforge export`'s; `seed` is how a record yields a seed prompt (None: the first user
    turn of what `parse` reads, or a prompt record's field where there is no parser);
    `seeds` lists the format as a seed-file kind in `dialforge formats`."""

    name: str
    description: str
    parse: Callable[[Any], list[Conversation]] | None = None
    detect: Callable[[dict[str, Any]], bool] | None = None
    write: Writer | None = None
    export: Export | None = None
    seed: SeedRule | None = None
    seeds: bool = False
    read_file: Callable[[Path, ReadReport], list[Conversation]] | None = None

    @property
    def readable(self) -> bool:
        return bool(self.parse or self.read_file or self.name == "mapping")

    @property
    def kinds(self) -> str:
        parts = ["read"] if self.readable else []
        if self.write or self.export:
            parts.append("write")
        if self.seeds:
            parts.append("seeds")
        return ",".join(parts)

    @cached_property
    def seed_rule(self) -> SeedRule:
        if self.seed is not None:
            return self.seed
        return first_user_turn(self.name, self.parse) if self.parse is not None else PROMPT_FIELDS


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


def _read_hf(path: Path, report: ReadReport) -> list[Conversation]:
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
        write=jsonl_writer(formats.to_openai),
        export=Export(chat_export(consumers.to_openai_ft), check_as="openai"),
    ),
    Format(
        "sharegpt",
        "ShareGPT / FastChat / LLaMA-Factory: {conversations: [{from, value}], system?, tools?}; "
        "function_call / observation turns are tool calls and results",
        formats.parse_sharegpt,
        lambda r: _list(r, "conversations"),
        write=array_writer(formats.to_sharegpt),
        export=Export(as_export(array_writer(formats.to_sharegpt)), suffix=".json"),
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
        seed=SeedRule(PROMPT_FIELDS.text, opens=oasst_messages.is_opening),  # its text, openings only
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
        seed=PROMPT_FIELDS,  # the instruction (and input), not the conversation's first turn
        seeds=True,
    ),
    Format(
        "hf",
        "Hugging Face datasets folder (save_to_disk): id, messages (typed, tool calls structured), tools, meta",
        write=HF_WRITER,
        export=Export(as_export(HF_WRITER), check_as="hf", layout="folder"),
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
        export=Export(write_llamafactory, check_as="llamafactory", layout="shared"),
    ),
    Format(
        "trl",
        "TRL SFTTrainer: {messages (OpenAI's shape), tools: JSON string} (export)",
        export=Export(chat_export(consumers.to_trl), check_as="trl"),
    ),
]
BY_NAME = {f.name: f for f in FORMATS}
READ_FORMATS: tuple[str, ...] = ("auto", *(f.name for f in FORMATS if f.readable))
#: `write_conversations` / `convert --to`
WRITE_FORMATS: tuple[str, ...] = tuple(f.name for f in FORMATS if f.write is not None)
#: `dialforge export --to`, the pipeline's `export:` list
EXPORT_FORMATS: tuple[str, ...] = tuple(f.name for f in FORMATS if f.export is not None)


def export_format_names() -> tuple[str, ...]:
    """The formats `dialforge export` writes (for help texts and config types)."""
    return EXPORT_FORMATS


def writer(fmt: str) -> Writer:
    """`write_conversations`' writer of `fmt`, or a DialforgeError listing the ones there are."""
    f = BY_NAME.get(fmt)
    if f is None or f.write is None:
        raise DialforgeError(f"unknown output format {fmt!r} (expected one of {', '.join(WRITE_FORMATS)})")
    return f.write


def exporter(fmt: str) -> Export:
    """`dialforge export`'s writer of `fmt`, or a DialforgeError listing the ones there are."""
    f = BY_NAME.get(fmt)
    if f is None or f.export is None:
        raise DialforgeError(f"unknown export format {fmt!r} (expected one of {', '.join(EXPORT_FORMATS)})")
    return f.export


def check_read_format(name: str) -> str:
    """A config's reader name: `auto`, a READ_FORMATS name, or `mapping:FILE`; checked when the
    config is read, so a typo fails before any work starts."""
    if name.startswith("mapping:") or name in READ_FORMATS:
        return name
    raise ValueError(f"unknown format {name!r} (expected one of {', '.join(READ_FORMATS)})")


def check_export_format(name: str) -> str:
    """An export format's name, or a ValueError listing EXPORT_FORMATS (for a CLI option)."""
    if name in EXPORT_FORMATS:
        return name
    raise ValueError(f"unknown export format {name!r} (expected one of {', '.join(EXPORT_FORMATS)})")


#: A config field naming the reader of a file: checked as the config is validated.
ReadFormat = Annotated[str, AfterValidator(check_read_format)]

if TYPE_CHECKING:
    ExportFormat = str
else:
    #: A config field naming an export format: a Literal of EXPORT_FORMATS (its JSON schema an
    #: enum, its error "Input should be 'openai', ...").
    ExportFormat = Literal[EXPORT_FORMATS]


def detect_record(rec: dict[str, Any]) -> str | None:
    """The first reader whose shape matches this record, or None."""
    for f in FORMATS:
        if f.detect is not None and f.detect(rec):
            return f.name
    return None


def seed_rule(rec: dict[str, Any]) -> SeedRule:
    """How this record yields a seed: its format's rule (the first format that detects it), or
    a prompt record's (`prompts.PROMPT_FIELDS`)."""
    name = detect_record(rec)
    return BY_NAME[name].seed_rule if name is not None else PROMPT_FIELDS


def describe() -> list[tuple[str, str, str]]:
    """(name, kinds, description) for every format, for `dialforge formats` and the README."""
    return [(f.name, f.kinds, f.description) for f in FORMATS]


__all__ = [
    "EXPORT_FORMATS",
    "FORMATS",
    "READ_FORMATS",
    "SEED_KEYS",
    "WRITE_FORMATS",
    "ExportFormat",
    "Format",
    "ReadFormat",
    "check_export_format",
    "check_read_format",
    "describe",
    "detect_record",
    "export_format_names",
    "exporter",
    "seed_rule",
    "writer",
]
