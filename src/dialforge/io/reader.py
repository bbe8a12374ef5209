"""Read conversation files in every supported format, with located errors.

Writing is `output.write_conversations` (each format's writer: `registry`), file safety
`files`, the read report `report`; their names stay importable from here."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..conversation import Conversation
from ..errors import DialforgeError, RecordError
from ._idset import IdSet
from ._records import Located, is_jsonl, iter_located, iter_records, located, text_head
from .files import aside_path, atomic_open, atomic_write_bytes, atomic_writer, check_output, remove_stale_temps
from .formats import type_name
from .mapping import Mapping, load_mapping, parse_mapped
from .output import write_conversations
from .registry import BY_NAME, READ_FORMATS, SEED_KEYS, WRITE_FORMATS, detect_record
from .report import KEEP_ERRORS, OnError, ReadReport
from .seeds import read_seeds

log = logging.getLogger("dialforge.io")


def _first_record(path: Path) -> Located:
    first_error: RecordError | None = None
    for loc in iter_located(path):
        if isinstance(loc, RecordError):
            first_error = first_error or loc
            continue
        return loc
    if first_error is not None:
        raise first_error
    raise DialforgeError(f"{path}: no records (empty file)")


def _where(path: Path, loc: Located | RecordError) -> str:
    if loc.line is not None:
        return f"{path}:{loc.line}"
    return f"{path}[record {loc.index}]"


def detect_format(path: Path) -> str:
    """The reader for a file, from the shape of its first record (an HF dataset if a folder)."""
    if path.is_dir():
        return "hf"
    if path.suffix not in (".json", ".jsonl", ".ndjson") and not text_head(path).lstrip().startswith(("{", "[")):
        raise DialforgeError(
            f"{path}: plain text, not a dialogue file (found {text_head(path, 60).strip()[:40]!r}); "
            "plain text files are read as seed prompts"
        )
    loc = _first_record(path)
    rec = loc.rec
    if not isinstance(rec, dict):
        what = f"a JSON {type_name(rec)}"
        if isinstance(rec, list):
            what += f" ({len(rec)} items)"
        raise DialforgeError(f"{_where(path, loc)}: found {what}, expected a record (a JSON object)")
    name = detect_record(rec)
    if name is not None:
        return name
    keys = ", ".join(map(str, list(rec)[:12])) or "none"
    if any(k in rec for k in SEED_KEYS):
        raise DialforgeError(
            f"{_where(path, loc)}: this file holds prompts, not conversations (keys: {keys}); "
            "use it as seeds (`dialforge seeds`, seeds.questions)"
        )
    raise DialforgeError(
        f"{_where(path, loc)}: no reader knows a record with keys {keys}; pass --from "
        "(`dialforge formats` lists them) or map the fields (--messages FIELD --role-field F --content-field F)"
    )


def _parser(fmt: str, mapping: Mapping | None) -> tuple[str, Callable[[Any], list[Conversation]]]:
    if fmt.startswith("mapping:"):
        mapping = load_mapping(fmt.split(":", 1)[1])
        fmt = "mapping"
    if fmt == "mapping" or (fmt == "auto" and mapping is not None):
        m = mapping or Mapping()
        return "mapping", lambda rec: parse_mapped(rec, m)
    if fmt not in READ_FORMATS:
        raise DialforgeError(f"unknown format {fmt!r} (expected one of {', '.join(READ_FORMATS)})")
    parse = BY_NAME[fmt].parse
    assert parse is not None
    return fmt, parse


def iter_conversations(
    path: str | Path,
    fmt: str = "auto",
    *,
    on_error: OnError = "fail",
    require_alternation: bool = False,
    dedup_ids: bool = False,
    report: ReadReport | None = None,
    mapping: Mapping | None = None,
) -> Iterator[Conversation]:
    """Conversations of a dialogue file, streamed in constant memory (past 200k ids the ids
    seen go to a temporary SQLite table, see `_idset`).

    `skip`: bad records are logged and counted in `report`. Duplicate ids (the source's id
    where it has one, else the content id) are counted; `dedup_ids` keeps only the first.
    """
    for c, _, _ in iter_conversations_located(
        path,
        fmt,
        on_error=on_error,
        require_alternation=require_alternation,
        dedup_ids=dedup_ids,
        report=report,
        mapping=mapping,
    ):
        yield c


def iter_conversations_located(
    path: str | Path,
    fmt: str = "auto",
    *,
    on_error: OnError = "fail",
    require_alternation: bool = False,
    dedup_ids: bool = False,
    report: ReadReport | None = None,
    mapping: Mapping | None = None,
) -> Iterator[tuple[Conversation, int | None, int]]:
    """`iter_conversations` with each conversation's (line, record index), so later errors
    (score fields, filter expressions) can name the record."""
    path = Path(path)
    if not path.exists():
        raise DialforgeError(f"{path}: file not found")
    report = report if report is not None else ReadReport(path=str(path))
    if fmt == "auto" and mapping is None:
        fmt = detect_format(path)
    whole = BY_NAME.get(fmt)
    if whole is not None and whole.read_file is not None:  # records link across the file
        report.format = fmt
        for i, c in enumerate(whole.read_file(path, report)):
            yield c, None, i
        return
    report.format, parse = _parser(fmt, mapping)
    seen = IdSet()
    try:
        for c, loc in _read_records(path, parse, seen, report, on_error, require_alternation, dedup_ids):
            yield c, loc.line, loc.index
    finally:
        seen.close()
    _finish(path, report, dedup_ids)


def _read_records(
    path: Path,
    parse: Callable[[Any], list[Conversation]],
    seen: IdSet,
    report: ReadReport,
    on_error: OnError,
    require_alternation: bool,
    dedup_ids: bool,
) -> Iterator[tuple[Conversation, Located]]:
    for loc in iter_located(path):
        report.records += 1
        try:
            convs = _parse_one(loc, parse, path, require_alternation)
        except RecordError as err:
            if on_error == "fail":
                raise err from None
            report.skip(err)
            log.info("skipped bad record: %s", err)
            continue
        for c in convs:
            key = str(c.meta.get("source_id", c.id))
            if not seen.add(key):
                report.duplicates += 1
                if report.duplicates == 1:
                    report.duplicate_example = f"{key!r} again at {_where(path, loc)}"
                if dedup_ids:
                    continue
            report.conversations += 1
            yield c, loc  # type: ignore[misc]


def _parse_one(
    loc: Located | RecordError, parse: Callable[[Any], list[Conversation]], path: Path, require_alternation: bool
) -> list[Conversation]:
    """The conversations of one located record, or its RecordError with file and line."""
    if isinstance(loc, RecordError):
        raise loc
    try:
        convs = parse(loc.rec)
        for c in convs:
            if loc.key is not None:
                c.meta.setdefault("source_id", loc.key)
            if require_alternation:
                problems = c.role_order_problems()
                if problems:
                    raise RecordError(f"roles do not alternate: {problems[0]}", field="messages")
    except RecordError as e:
        raise located(e, path, loc) from None
    return convs


def _finish(path: Path, report: ReadReport, dedup_ids: bool) -> None:
    if report.records == 0:
        raise DialforgeError(f"{path}: no records (empty file)")
    if report.conversations == 0 and report.n_skipped == report.records:
        raise DialforgeError(f"{path}: none of the {report.records} records could be read (first: {report.skipped[0]})")
    report.deduped = dedup_ids
    if report.n_skipped:
        log.warning("%s: %d bad records skipped (first: %s)", path, report.n_skipped, report.skipped[0])
    if report.duplicates:
        log.warning(
            "%s: %d duplicate ids (first: %s); %s",
            path,
            report.duplicates,
            report.duplicate_example,
            "dropped, the first of each kept" if dedup_ids else "kept (convert --dedup-ids keeps only the first)",
        )


def read_conversations(
    path: str | Path,
    fmt: str = "auto",
    *,
    on_error: OnError = "fail",
    require_alternation: bool = False,
    dedup_ids: bool = False,
    report: ReadReport | None = None,
    mapping: Mapping | None = None,
) -> list[Conversation]:
    """Read a dialogue file. In `skip` mode bad records are logged and counted in `report`."""
    return list(
        iter_conversations(
            path,
            fmt,
            on_error=on_error,
            require_alternation=require_alternation,
            dedup_ids=dedup_ids,
            report=report,
            mapping=mapping,
        )
    )


def read_texts(path: str | Path, text_field: str | None = None) -> list[str]:
    """Seed prompts of a file (see `seeds.read_seeds`)."""
    return read_seeds(path, text_field=text_field)


__all__ = [
    "KEEP_ERRORS",
    "OnError",
    "ReadReport",
    "aside_path",
    "atomic_writer",
    "remove_stale_temps",
    "iter_conversations",
    "read_conversations",
    "write_conversations",
    "read_texts",
    "atomic_open",
    "atomic_write_bytes",
    "check_output",
    "detect_format",
    "is_jsonl",
    "iter_records",
    "READ_FORMATS",
    "WRITE_FORMATS",
]
