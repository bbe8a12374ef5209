"""Low-level record iteration with locations, so every error can name file and line.

Streams: JSON Lines line by line, large JSON arrays and objects of records with ijson, so a
file of any size is read in constant memory. Reads UTF-8 (with or without a byte-order
mark) and UTF-16/32 with a byte-order mark; other undecodable bytes are named by offset.
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from ..errors import DialforgeError, RecordError
from .formats import type_name

#: JSON files up to this size are parsed whole by orjson (fast, exact line/column in errors);
#: larger ones are streamed by ijson.
BIG_JSON = 8 << 20
#: Keys that make a top-level JSON object one record rather than a container of records.
RECORD_KEYS = frozenset(
    {
        "messages",
        "conversations",
        "conversation",
        "prompt",
        "history",
        "data",
        "turns",
        "log",
        "utterances",
        "Events",
        "original",
        "instruction",
        "text",
        "question",
        "message_tree_id",
    }
)
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass
class Located:
    """One raw record and where it came from (`key`: its name in a JSON object of records)."""

    rec: Any
    line: int | None
    index: int
    key: str | None = None


def encoding_of(path: Path) -> str:
    """'utf-8', 'utf-8-sig', 'utf-16' or 'utf-32' from the byte-order mark; NUL bytes
    without one mean binary data or UTF-16 without a mark, which we refuse by offset."""
    with path.open("rb") as f:
        head = f.read(4096)
    for bom, enc in _BOMS:
        if head.startswith(bom):
            return enc
    nul = head.find(b"\x00")
    if nul >= 0:
        raise DialforgeError(
            f"{path}: byte offset {nul}: NUL byte: binary data, or UTF-16 without a byte-order mark "
            "(expected UTF-8 text)"
        )
    return "utf-8"


def _snippet(raw: bytes | str, n: int = 40) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    text = text.strip()
    return repr(text[:n] + ("..." if len(text) > n else ""))


def _undecodable(raw: bytes, base: int) -> tuple[int, str] | None:
    """(file offset of the first bad byte, why) if `raw` is not UTF-8, else None."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as e:
        off = base + e.start
        return off, f"byte offset {off}: byte 0x{raw[e.start]:02x} is not UTF-8 (expected UTF-8 text)"
    return None


def text_head(path: Path, n: int = 4096) -> str:
    """The start of the file as text, whatever its (BOM-marked) encoding."""
    enc = encoding_of(path)
    with path.open("rb") as f:
        raw = f.read(n)
    return raw.decode(enc, "replace").lstrip("\ufeff")


def is_jsonl(path: Path) -> bool:
    """JSON Lines by extension, else by content: '[' starts a JSON array; '{' starts JSON
    Lines when the first line is a whole JSON value, else one JSON object."""
    if path.suffix in (".jsonl", ".ndjson"):
        return True
    if path.suffix == ".json":
        return False
    head = text_head(path).lstrip()
    if head.startswith("["):
        return False
    if head.startswith("{"):
        first = head.split("\n", 1)[0]
        try:
            orjson.loads(first)
        except orjson.JSONDecodeError:
            return len(head) < len(first) + 1 and "\n" not in head  # a one-line JSON object cut at 4096
        return True
    return True


def _jsonl_lines(path: Path, f: IO[bytes], enc: str) -> Iterator[tuple[int, int, bytes | str]]:
    """(line number, byte offset, raw line)."""
    if enc in ("utf-16", "utf-32"):
        text = io.TextIOWrapper(f, encoding=enc, newline=None)
        lineno = 0
        try:
            for lineno, s in enumerate(text, start=1):  # noqa: B007
                yield lineno, -1, s.lstrip("\ufeff") if lineno == 1 else s
        except UnicodeDecodeError as e:
            raise RecordError(f"not valid {enc.upper()} ({e.reason})", path=path, line=lineno + 1) from None
        return
    offset = 0
    if enc == "utf-8-sig":
        f.read(3)
        offset = 3
    for lineno, raw in enumerate(f, start=1):
        yield lineno, offset, raw
        offset += len(raw)


def _line_error(path: Path, lineno: int, offset: int, raw: bytes | str, e: Exception) -> RecordError:
    if isinstance(raw, bytes):
        bad = _undecodable(raw, offset)
        if bad:
            return RecordError(bad[1], path=path, line=lineno)
    if lineno == 1 and raw.strip() in (b"[", "["):
        return RecordError(
            "found the start of a JSON array, but a JSON Lines file holds one record per line "
            "(name a JSON array file .json)",
            path=path,
            line=lineno,
        )
    cause = str(e).split(":", 1)[0]
    return RecordError(f"broken JSON ({cause}); found {_snippet(raw)}", path=path, line=lineno)


def _iter_jsonl(path: Path, enc: str) -> Iterator[Located | RecordError]:
    index = 0
    with path.open("rb") as f:
        for lineno, offset, raw in _jsonl_lines(path, f, enc):
            if not raw.strip():
                continue
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError as e:
                yield _line_error(path, lineno, offset, raw, e)
                index += 1
                continue
            yield Located(obj, lineno, index)
            index += 1


def _whole_json_error(path: Path, data: bytes, e: orjson.JSONDecodeError) -> RecordError:
    bad = _undecodable(data, 0)
    if bad:
        return RecordError(bad[1], path=path, line=data.count(b"\n", 0, bad[0]) + 1)
    if e.msg.startswith(("trailing characters", "unexpected content after document")):
        return RecordError(
            "more than one JSON value: this looks like JSON Lines (name the file .jsonl)", path=path, line=e.lineno
        )
    found = data[e.pos : e.pos + 40] if e.pos < len(data) else b"the end of the file"
    return RecordError(f"broken JSON ({e.msg}, column {e.colno}); found {_snippet(found)}", path=path, line=e.lineno)


def load_json(path: Path, enc: str | None = None) -> Any:
    """A whole JSON file, any BOM-marked encoding; errors name line and cause."""
    enc = enc or encoding_of(path)
    data = path.read_bytes()
    if enc == "utf-8-sig":
        data = data[3:]
    elif enc != "utf-8":
        try:
            data = data.decode(enc).lstrip("\ufeff").encode()
        except UnicodeDecodeError as e:
            raise RecordError(f"not valid {enc.upper()} at byte offset {e.start}", path=path) from None
    if not data.strip():
        raise DialforgeError(f"{path}: no records (empty file)")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise _whole_json_error(path, data, e) from None


def _container_of(path: Path, data: Any) -> Iterator[Located]:
    if isinstance(data, list):
        for index, obj in enumerate(data):
            yield Located(obj, None, index)
        return
    if not isinstance(data, dict):
        raise RecordError(
            f"found a JSON {type_name(data)}, expected records (a JSON array, one object per line, "
            "or an object of records)",
            path=path,
        )
    values = list(data.values())
    if RECORD_KEYS & data.keys() or not values:
        yield Located(data, None, 0)
    elif all(isinstance(v, dict) for v in values):
        for index, (k, v) in enumerate(data.items()):
            yield Located(v, None, index, key=str(k))
    elif all(isinstance(v, list) for v in values):
        index = 0
        for v in values:
            for obj in v:
                yield Located(obj, None, index)
                index += 1
    else:
        yield Located(data, None, 0)


def _ijson_error(path: Path, index: int, e: Exception) -> RecordError:
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return RecordError(f"broken JSON after record {index} ({first})", path=path)


def _build(events: Iterator[tuple[str, Any]], ev: str, val: Any) -> Any:
    """One JSON value from ijson basic_parse events, its first event given."""
    from ijson.common import ObjectBuilder

    if ev not in ("start_map", "start_array"):
        return val
    b = ObjectBuilder()
    b.event(ev, val)
    depth = 1
    for ev, val in events:
        b.event(ev, val)
        if ev in ("start_map", "start_array"):
            depth += 1
        elif ev in ("end_map", "end_array"):
            depth -= 1
            if depth == 0:
                break
    return b.value


def _stream_object(events: Iterator[tuple[str, Any]]) -> Iterator[tuple[str | None, Any]]:
    """(key, record) of a top-level object: its entries that are objects (keyed records, as in
    MultiWOZ), or the items of its entries that are arrays (splits, as in ABCD), one at a time.
    Raises LookupError at the first entry that shows the object is one record."""
    for ev, key in events:
        if ev == "end_map":
            return
        ev, val = next(events)
        if key in RECORD_KEYS or ev not in ("start_map", "start_array"):
            raise LookupError(key)
        if ev == "start_map":
            yield key, _build(events, ev, val)
            continue
        for ev, val in events:
            if ev == "end_array":
                break
            yield None, _build(events, ev, val)


def _stream_json(path: Path, enc: str) -> Iterator[Located]:
    import ijson

    with path.open("rb") as f:
        if enc == "utf-8-sig":
            f.read(3)
        start = f.tell()
        head = f.read(4096).lstrip()
        f.seek(start)
        index = 0
        try:
            if head.startswith(b"["):
                for obj in ijson.items(f, "item", use_float=True):
                    yield Located(obj, None, index)
                    index += 1
                return
            events = iter(ijson.basic_parse(f, use_float=True))
            next(events)  # start_map
            for key, obj in _stream_object(events):
                yield Located(obj, None, index, key=key)
                index += 1
            return
        except LookupError:
            if index:
                raise RecordError(f"record {index}: a top-level object mixing records and fields", path=path) from None
        except ijson.JSONError as e:
            raise _ijson_error(path, index, e) from None
    yield from _container_of(path, load_json(path, enc))  # one big record


def located(e: RecordError, path: Path, loc: Located) -> RecordError:
    """`e` with the file and the record's line (or index) when it does not name a file yet."""
    if e.path is not None:
        return e
    return RecordError(e.message, path=path, line=loc.line, index=None if loc.line else loc.index, field=e.field)


def iter_located(path: Path) -> Iterator[Located | RecordError]:
    """Every record of a JSON Lines or JSON file, in order, with its location. A broken JSON
    line is yielded as a RecordError so the caller can skip it; a broken JSON file raises."""
    if not path.exists():
        raise DialforgeError(f"{path}: file not found")
    if path.is_dir():
        raise DialforgeError(f"{path}: is a directory, expected a file")
    enc = encoding_of(path)
    if is_jsonl(path):
        source: Iterator[Located | RecordError] = _iter_jsonl(path, enc)
    elif enc in ("utf-8", "utf-8-sig") and path.stat().st_size > BIG_JSON:
        source = _stream_json(path, enc)
    else:
        source = _container_of(path, load_json(path, enc))
    for loc in source:
        if isinstance(loc, Located) and isinstance(loc.rec, dict) and isinstance(loc.rec.get("id"), _NOT_AN_ID):
            # an id names a record: an object, a list or a boolean there was turned into text
            # silently ("{'a': 1}"), so two records could share it or a typo go unnoticed
            got = type(loc.rec["id"]).__name__
            kind = {"dict": "an object", "list": "a list", "bool": "a boolean"}[got]
            yield located(RecordError(f"expected a string or a number, got {kind}", field="id"), path, loc)
        else:
            yield loc


_NOT_AN_ID = (dict, list, bool)


def iter_records(path: Path) -> Iterator[tuple[Any, int | None, int]]:
    """Yield (record, line, index). `line` is 1-based for JSONL, None for a JSON file.

    A broken JSON line in a JSONL file is yielded as a RecordError instance in place of
    the record so the caller can skip it; a broken JSON array cannot be split and raises.
    """
    for loc in iter_located(Path(path)):
        if isinstance(loc, RecordError):
            yield loc, loc.line, -1
        else:
            yield loc.rec, loc.line, loc.index


def read_text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of a plain text file in any BOM-marked encoding; bad bytes by offset."""
    enc = encoding_of(path)
    with path.open("rb") as f:
        for lineno, offset, raw in _jsonl_lines(path, f, enc):
            if isinstance(raw, bytes):
                bad = _undecodable(raw, offset)
                if bad:
                    raise RecordError(bad[1], path=path, line=lineno)
                raw = raw.decode("utf-8")
            yield lineno, raw.rstrip("\r\n")
