"""Append-only JSON Lines keyed by `id`, safe against crashes and corrupt lines.

Records are appended as jobs finish (a crash loses at most the line being written). A later
line with the same id supersedes an earlier one: that is how a failed job's record is replaced
when a re-run retries it. At the end of a stage the executor rewrites the file once in plan
order (last record per id), so two identical runs write byte-identical files whatever the
completion order was.

On open, a corrupt line in the middle is skipped with a warning naming file:line and kept in
`NAME.corrupt` (nothing produced is ever lost); only a cut-short last line (no newline, not
valid JSON) is treated as an interrupted write.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("dialforge.run")


def _record_id(line: bytes) -> str | None:
    try:
        rec = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    rid = rec.get("id") if isinstance(rec, dict) else None
    return rid if isinstance(rid, str) and rid else None


class LeadingRecords(Collection[dict[str, Any]]):
    """The first `n` records of a JSON Lines file, read from disk each time they are iterated:
    a stage's records in plan order after `RecordStore.rewrite`, without holding a stage of
    millions of conversations in memory."""

    def __init__(self, path: str | Path, n: int) -> None:
        self.path = Path(path)
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if not self.n:
            return
        left = self.n
        with self.path.open("rb") as f:
            for line in f:
                if line.strip():
                    yield orjson.loads(line)
                    left -= 1
                    if not left:
                        return

    def __contains__(self, record: object) -> bool:
        return any(r == record for r in self)


class RecordStore:
    """Records keyed by `id`; `append` of a known id is a no-op unless `replace=True`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.ids: set[str] = set()
        self.appended = 0
        self._superseded = False
        self._recover()
        self._f = self.path.open("ab")

    # -- opening -------------------------------------------------------------------------
    def _recover(self) -> None:
        # a rewrite killed before its rename: the store holds the run directory's lock, so the
        # temporary file is a dead writer's (the records are all in the store itself)
        self.path.with_name(self.path.name + ".tmp").unlink(missing_ok=True)
        if not self.path.exists():
            return
        bad, cut = self._scan()
        if cut >= 0:
            self._drop_cut_tail(cut)
        if bad:
            self._drop_corrupt(bad)
        elif self.path.stat().st_size and not self.path.read_bytes().endswith(b"\n"):
            with self.path.open("ab") as f:
                f.write(b"\n")

    def _scan(self) -> tuple[list[tuple[int, bytes]], int]:
        """Read the ids; (corrupt lines as (line number, bytes), byte offset of a cut-short
        last line or -1)."""
        bad: list[tuple[int, bytes]] = []
        with self.path.open("rb") as f:
            pos = 0
            for n, line in enumerate(f, 1):
                if not line.endswith(b"\n"):
                    if _record_id(line) is None:
                        return bad, pos
                    line += b"\n"  # a complete record that only missed its newline
                if line.strip():
                    rid = _record_id(line)
                    if rid is None:
                        bad.append((n, line))
                    else:
                        self._superseded |= rid in self.ids
                        self.ids.add(rid)
                pos += len(line)
        return bad, -1

    def _drop_cut_tail(self, cut: int) -> None:
        tail = self.path.read_bytes()[cut:]
        self._keep_aside(tail + b"\n")
        with self.path.open("r+b") as f:
            f.truncate(cut)
        log.warning(
            "%s: dropped %d bytes of an incomplete last record (crash recovery; kept in %s)",
            self.path,
            len(tail),
            self._aside_path().name,
        )

    def _drop_corrupt(self, bad: list[tuple[int, bytes]]) -> None:
        """Move corrupt lines to NAME.corrupt, with a warning naming file:line for each (five at most)."""
        for n, _ in bad[:5]:
            log.warning("%s:%d: corrupt record skipped (kept in %s)", self.path, n, self._aside_path().name)
        if len(bad) > 5:
            log.warning("%s: %d corrupt records skipped in all", self.path, len(bad))
        self._keep_aside(b"".join(line for _, line in bad))
        keep = set(n for n, _ in bad)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with self.path.open("rb") as src, tmp.open("wb") as dst:
            for n, line in enumerate(src, 1):
                if n not in keep:
                    dst.write(line if line.endswith(b"\n") else line + b"\n")
        os.replace(tmp, self.path)

    def _aside_path(self) -> Path:
        return self.path.with_name(self.path.name + ".corrupt")

    def _keep_aside(self, blob: bytes) -> None:
        with self._aside_path().open("ab") as f:
            f.write(blob)

    # -- use -------------------------------------------------------------------------------
    def __contains__(self, rid: str) -> bool:
        return rid in self.ids

    def __len__(self) -> int:
        return len(self.ids)

    def append(self, record: dict[str, Any], *, replace: bool = False, sync: bool = False) -> bool:
        rid = record["id"]
        if rid in self.ids:
            if not replace:
                return False
            self._superseded = True
        self._f.write(orjson.dumps(record) + b"\n")
        self._f.flush()
        if sync:
            os.fsync(self._f.fileno())
        self.ids.add(rid)
        self.appended += 1
        return True

    def _index(self) -> dict[str, tuple[int, int]]:
        """id -> (offset, length) of its last line."""
        self._f.flush()
        idx: dict[str, tuple[int, int]] = {}
        with self.path.open("rb") as f:
            pos = 0
            for line in f:
                rid = _record_id(line) if line.strip() else None
                if rid is not None:
                    idx[rid] = (pos, len(line))
                pos += len(line)
        return idx

    def records(self) -> Iterator[dict[str, Any]]:
        """Every record once (the last line of each id), in file order."""
        self._f.flush()
        if not self._superseded:
            with self.path.open("rb") as f:
                for line in f:
                    if line.strip():
                        yield orjson.loads(line)
            return
        idx = self._index()
        last = sorted(idx.values())
        with self.path.open("rb") as f:
            for off, length in last:
                f.seek(off)
                yield orjson.loads(f.read(length))

    def get_many(self, ids: Iterable[str]) -> Iterator[dict[str, Any]]:
        """The records of `ids` that exist, in the order given."""
        idx = self._index()
        with self.path.open("rb") as f:
            for rid in ids:
                if rid in idx:
                    off, length = idx[rid]
                    f.seek(off)
                    yield orjson.loads(f.read(length))

    def rewrite(self, order: list[str]) -> int:
        """Write the file once, atomically: the records of `order` first, in that order, then
        any others in file order; one line per id. A no-op when nothing would change. Returns
        how many records of `order` now lead the file."""
        idx = self._index()
        planned = [i for i in order if i in idx]
        seen = set(planned)
        rest = sorted((v, k) for k, v in idx.items() if k not in seen)
        layout = [idx[i] for i in planned] + [v for v, _ in rest]
        current = sorted(idx.values())
        if layout == current and not self._superseded:
            return len(planned)
        self._f.close()
        tmp = self.path.with_name(self.path.name + ".tmp")
        with self.path.open("rb") as src, tmp.open("wb") as dst:
            for off, length in layout:
                src.seek(off)
                dst.write(src.read(length))
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(tmp, self.path)
        self._superseded = False
        self._f = self.path.open("ab")
        return len(planned)

    def close(self) -> None:
        self._f.close()
