"""One process per run directory: an advisory `flock` on `RUN_DIR/.lock` holding the PID.

The kernel releases the lock when the process dies (kill -9 included), so a crashed run never
leaves a stale lock behind; a second live process gets a clear error naming the holder.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ..errors import DialforgeError


class RunDirLocked(DialforgeError):
    """Another live process is working on this run directory."""


class RunLock:
    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / ".lock"
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise RunDirLocked(
                f"{self.path.parent} is in use by process {holder} (another dialforge run); "
                "wait for it to finish, or use another --out directory"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
