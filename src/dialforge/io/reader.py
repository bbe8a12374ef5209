"""Read and write conversation files in every supported format, with located errors."""

from __future__ import annotations

import glob
import logging
import os
import socket
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import orjson

from ..conversation import Conversation
from ..errors import DialforgeError, RecordError
from . import formats
from ._idset import IdSet
from ._records import Located, is_jsonl, iter_located, iter_records, located, text_head
from .formats import type_name
from .mapping import Mapping, load_mapping, parse_mapped
from .registry import BY_NAME, READ_FORMATS, SEED_KEYS, WRITE_FORMATS, detect_record

log = logging.getLogger("dialforge.io")

OnError = Literal["fail", "skip"]
#: At most this many skipped-record errors are kept in a report (all are counted).
KEEP_ERRORS = 100


@dataclass
class ReadReport:
    """What a read kept and what it skipped (each skip with its location and reason)."""

    path: str
    format: str = ""
    records: int = 0
    conversations: int = 0
    skipped: list[RecordError] = field(default_factory=list)
    n_skipped: int = 0
    duplicates: int = 0
    duplicate_example: str = ""
    deduped: bool = False
    not_openings: int = 0  # seed files: answers and in-thread replies of a flat message list, left out

    def skip(self, e: RecordError) -> None:
        self.n_skipped += 1
        if len(self.skipped) < KEEP_ERRORS:
            self.skipped.append(e)

    def summary(self) -> str:
        s = f"{self.path}: {self.conversations} conversations from {self.records} records"
        if self.n_skipped:
            s += f", {self.n_skipped} bad records skipped"
        if self.duplicates:
            fate = "dropped" if self.deduped else "kept"
            s += f", {self.duplicates} duplicate ids {fate} (first: {self.duplicate_example})"
        return s


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
    from .seeds import read_seeds

    return read_seeds(path, text_field=text_field)


def _file_mode() -> int:
    """0666 less the process umask (read without changing it where /proc allows)."""
    try:
        with open("/proc/self/status") as f:
            umask = next(int(ln.split()[1], 8) for ln in f if ln.startswith("Umask:"))
    except (OSError, StopIteration, ValueError):
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


_SPECIAL = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def check_output(path: str | Path, *, folder: bool = False) -> Path:
    """Refuse an output path that exists and is not ours to replace: a symbolic link, a device
    node, a FIFO or a socket, a folder where a file goes (or a file where a folder goes). An
    atomic replace would swap it for a regular file (as root, `--out /dev/null` replaced
    /dev/null). Absent paths and our own regular files (folders for `folder=True`) pass."""
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return path
    except OSError:
        return path  # the write itself will say what is wrong (permissions, a file as parent)
    mode = st.st_mode
    if stat.S_ISLNK(mode):
        raise DialforgeError(f"{path}: is a symbolic link; refusing to replace it (give the real path or a new one)")
    for test, what in _SPECIAL:
        if test(mode):
            raise DialforgeError(f"{path}: is {what}, not a regular file; refusing to replace it")
    if folder and not stat.S_ISDIR(mode):
        raise DialforgeError(f"{path}: is a file; this output is a folder (give a new path)")
    if not folder and stat.S_ISDIR(mode):
        raise DialforgeError(f"{path}: is a folder; this output is a file (give a file path)")
    return path


def _tmp_prefix(path: Path) -> str:
    return f".{path.name}."


def _tmp_owner() -> str:
    """Host and pid in a temporary file's name: a later run removes the ones whose writer died."""
    return f"{socket.gethostname().replace('.', '_')}-{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def remove_stale_temps(path: str | Path) -> list[Path]:
    """Remove the temporary files that an `atomic_open` of `path` killed on this host left
    (`.NAME.HOST-PID.XXXX.tmp` whose PID is gone). Others' files and live writers' are kept."""
    path = Path(path)
    host = socket.gethostname().replace(".", "_")
    removed: list[Path] = []
    try:
        candidates = list(path.parent.glob(f"{glob.escape(_tmp_prefix(path))}*.tmp"))
    except OSError:
        return removed
    for tmp in candidates:
        owner = tmp.name[len(_tmp_prefix(path)) :].split(".", 1)[0]
        who, _, pid = owner.rpartition("-")
        if who != host or not pid.isdigit() or _pid_alive(int(pid)):
            continue
        try:
            if stat.S_ISREG(os.lstat(tmp).st_mode):
                tmp.unlink()
                removed.append(tmp)
        except OSError:
            continue
    if removed:
        log.info("%s: removed %d temporary file(s) a killed run left", path, len(removed))
    return removed


@contextmanager
def atomic_open(path: str | Path) -> Iterator[IO[bytes]]:
    """A file that appears at `path` whole when the block ends, or not at all (the old file,
    if any, stays as it was when the block fails). Created with the user's umask. Only a
    regular file (or nothing) at `path` is replaced: see `check_output`."""
    path = check_output(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{_tmp_prefix(path)}{_tmp_owner()}.", suffix=".tmp")
    try:
        os.fchmod(fd, _file_mode())  # mkstemp makes 0600; outputs get what open() would give
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        check_output(path)  # it may have appeared while we wrote
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


atomic_writer = atomic_open  # the name the streaming score/filter/export code uses


def aside_path(path: Path, tag: str) -> Path:
    """Where a file or run directory moved aside goes: `NAME.TAG-YYYYmmdd-HHMMSS` beside it
    (`corrupt` for a damaged file, `old` for a run replaced by --force-new)."""
    return path.with_name(f"{path.name}.{tag}-{time.strftime('%Y%m%d-%H%M%S')}")


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write a whole file so that readers see the old or the new content, never half."""
    with atomic_open(path) as f:
        f.write(data)


def write_conversations(convs: Iterable[Conversation], path: str | Path, fmt: str = "openai") -> int:
    """Write conversations atomically, streaming (an iterator is never held in memory but
    for `hf`); ShareGPT goes to a JSON array unless the path ends in .jsonl."""
    path = Path(path)
    if fmt not in WRITE_FORMATS:
        raise DialforgeError(f"unknown output format {fmt!r} (expected one of {', '.join(WRITE_FORMATS)})")
    check_output(path, folder=fmt == "hf")
    if fmt == "hf":
        from .hf import save_hf

        convs = list(convs)
        save_hf(convs, path)
        return len(convs)
    to = formats.to_openai if fmt == "openai" else formats.to_sharegpt
    array = fmt == "sharegpt" and path.suffix != ".jsonl"
    n = 0
    with atomic_open(path) as f:
        if array:
            f.write(b"[")
        for c in convs:
            if array:
                f.write(b",\n" if n else b"\n")
                f.write(orjson.dumps(to(c), option=orjson.OPT_INDENT_2))
            else:
                f.write(orjson.dumps(to(c)) + b"\n")
            n += 1
        if array:
            f.write(b"\n]\n")
    return n


__all__ = [
    "ReadReport",
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
