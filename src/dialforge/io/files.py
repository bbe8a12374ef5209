"""File safety for every output: atomic writes (a file appears whole or not at all), refusal to
replace what is not ours (links, devices, folders), temporary files a killed run left, and
where a file or run moved aside goes. Nothing here knows a format."""

from __future__ import annotations

import glob
import logging
import os
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from ..errors import DialforgeError

log = logging.getLogger("dialforge.io")


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


__all__ = [
    "aside_path",
    "atomic_open",
    "atomic_write_bytes",
    "atomic_writer",
    "check_output",
    "remove_stale_temps",
]
