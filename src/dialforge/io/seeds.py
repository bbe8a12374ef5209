"""Seed prompts from any file users start with: plain text (one per line), JSONL/JSON of
strings, of prompt records (`text`, `prompt`, `question`, `instruction` + `input`,
evaluation files' `data`, MT-Bench `turns`), or of conversations in any known format (the
first user turn). `text_field` names the field (dotted) when the file uses another name.
Which prompt a record gives is its format's seed rule (`registry.Format.seed`, `prompts`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..errors import DialforgeError, RecordError
from ._records import Located, iter_located, located, read_text_lines, text_head
from .formats import type_name
from .prompts import field_text, string
from .registry import seed_rule
from .report import OnError, ReadReport

log = logging.getLogger("dialforge.io")


def _is_plain_text(path: Path) -> bool:
    if path.suffix in (".json", ".jsonl", ".ndjson"):
        return False
    return not text_head(path).lstrip().startswith(("{", "[", '"'))


def not_an_opening(rec: Any) -> bool:
    """A record that opens no prompt by its format's seed rule (one message of OASST's flat
    export that answers, or that a prompt inside a thread is): no seed, and no error."""
    return isinstance(rec, dict) and not seed_rule(rec).opens(rec)


def seed_text(rec: Any, text_field: str | None = None) -> str:
    """The prompt of one record, or a RecordError naming the field."""
    if isinstance(rec, str):
        return string(rec, "(record)")
    if not isinstance(rec, dict):
        raise RecordError(f"expected a string or an object, found a JSON {type_name(rec)}")
    if text_field:
        return field_text(rec, text_field)
    return seed_rule(rec).text(rec)


def _text_seeds(path: Path, report: ReadReport) -> list[str]:
    report.format = "text"
    out = [t.strip() for _, t in read_text_lines(path) if t.strip()]
    report.records = report.conversations = len(out)
    if not out:
        raise DialforgeError(f"{path}: no seed prompts (empty file)")
    return out


def _record_seed(loc: Located | RecordError, text_field: str | None, report: ReadReport, path: Path) -> str | None:
    """The seed of one located record (None: it opens none), or its RecordError located."""
    if isinstance(loc, RecordError):
        raise loc
    if not_an_opening(loc.rec):
        report.not_openings += 1
        return None
    try:
        return seed_text(loc.rec, text_field)
    except RecordError as e:
        raise located(e, path, loc) from None


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
        return _text_seeds(path, report)
    report.format = "prompts"
    out = []
    for loc in iter_located(path):
        report.records += 1
        try:
            seed = _record_seed(loc, text_field, report, path)
        except RecordError as err:
            if on_error == "fail":
                raise err from None
            report.skip(err)
            log.info("skipped bad seed record: %s", err)
            continue
        if seed is not None:
            out.append(seed)
    report.conversations = len(out)
    if report.records == 0:
        raise DialforgeError(f"{path}: no seed prompts (empty file)")
    if not out:
        raise DialforgeError(
            f"{path}: none of the {report.records} records holds a prompt (first: {report.skipped[0]})"
        )
    return out
