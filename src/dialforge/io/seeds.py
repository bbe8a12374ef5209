"""Seed prompts from any file users start with: plain text (one per line), JSONL/JSON of
strings, of prompt records (`text`, `prompt`, `question`, `instruction` + `input`,
evaluation files' `data`, MT-Bench `turns`), or of conversations in any known format (the
first user turn). `text_field` names the field (dotted) when the file uses another name.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..errors import DialforgeError, RecordError
from ._records import iter_located, located, read_text_lines, text_head
from .chat_formats import alpaca_prompt
from .formats import type_name
from .reader import OnError, ReadReport
from .registry import BY_NAME, SEED_KEYS, detect_record

log = logging.getLogger("dialforge.io")


def _is_plain_text(path: Path) -> bool:
    if path.suffix in (".json", ".jsonl", ".ndjson"):
        return False
    return not text_head(path).lstrip().startswith(("{", "[", '"'))


def _string(v: Any, field: str) -> str:
    if not isinstance(v, str):
        raise RecordError(f"expected a string, got {type_name(v)}", field=field)
    if not v.strip():
        raise RecordError("empty prompt", field=field)
    return v


def _dotted(rec: dict[str, Any], dotted: str) -> Any:
    cur: Any = rec
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            keys = ", ".join(map(str, list(cur)[:12])) if isinstance(cur, dict) else type_name(cur)
            raise RecordError(f"missing field (the record has keys: {keys or 'none'})", field=dotted)
        cur = cur[part]
    return cur


def _first_turn(v: Any, field: str) -> str:
    if not isinstance(v, list) or not v:
        got = "an empty list" if v == [] else type_name(v)
        raise RecordError(f"expected a non-empty list of strings, got {got}", field=field)
    return _string(v[0], f"{field}[0]")


def not_an_opening(rec: Any) -> bool:
    """One message of OASST's flat export (the `oasst-messages` reader's records) that opens
    no thread: an answer, or a prompt inside a thread (it has a parent). Neither is a seed."""
    return (
        isinstance(rec, dict)
        and detect_record(rec) == "oasst-messages"
        and (rec["role"] != "prompter" or rec["parent_message_id"] is not None)
    )


def seed_text(rec: Any, text_field: str | None = None) -> str:
    """The prompt of one record, or a RecordError naming the field."""
    if isinstance(rec, str):
        return _string(rec, "(record)")
    if not isinstance(rec, dict):
        raise RecordError(f"expected a string or an object, found a JSON {type_name(rec)}")
    if text_field:
        v = _dotted(rec, text_field)
        return _first_turn(v, text_field) if isinstance(v, list) else _string(v, text_field)
    fmt = detect_record(rec)
    parse = BY_NAME[fmt].parse if fmt is not None and fmt != "alpaca" else None
    if parse is not None:  # a conversation record (one message of a flat export is not: its text is)
        for conv in parse(rec):
            for m in conv.messages:
                if m.role == "user":
                    return m.content
        raise RecordError(f"a {fmt} conversation without a user turn")
    for key in SEED_KEYS:
        if key not in rec:
            continue
        if key == "instruction":
            return alpaca_prompt(rec)
        if key == "turns":
            return _first_turn(rec[key], key)
        return _string(rec[key], key)
    keys = ", ".join(map(str, list(rec)[:12])) or "none"
    raise RecordError(
        f"no prompt field: expected one of {', '.join(SEED_KEYS)} or a conversation; the record has keys: "
        f"{keys} (name the field with --text-field)"
    )


def read_seeds(
    path: str | Path,
    *,
    text_field: str | None = None,
    on_error: OnError = "fail",
    report: ReadReport | None = None,
) -> list[str]:
    """The seed prompts of a file, in order. `skip`: bad records are counted in `report`."""
    path = Path(path)
    if not path.exists():
        raise DialforgeError(f"{path}: file not found")
    if path.is_dir():
        raise DialforgeError(f"{path}: is a directory, expected a seed file")
    report = report if report is not None else ReadReport(path=str(path))
    if _is_plain_text(path):
        report.format = "text"
        out = [t.strip() for _, t in read_text_lines(path) if t.strip()]
        report.records = report.conversations = len(out)
        if not out:
            raise DialforgeError(f"{path}: no seed prompts (empty file)")
        return out
    report.format = "prompts"
    out = []
    for loc in iter_located(path):
        report.records += 1
        try:
            if isinstance(loc, RecordError):
                raise loc
            if not_an_opening(loc.rec):
                report.not_openings += 1
                continue
            out.append(seed_text(loc.rec, text_field))
        except RecordError as e:
            err = e if isinstance(loc, RecordError) else located(e, path, loc)
            if on_error == "fail":
                raise err from None
            report.skip(err)
            log.info("skipped bad seed record: %s", err)
    report.conversations = len(out)
    if report.records == 0:
        raise DialforgeError(f"{path}: no seed prompts (empty file)")
    if not out:
        raise DialforgeError(
            f"{path}: none of the {report.records} records holds a prompt (first: {report.skipped[0]})"
        )
    return out
