"""Folders dialforge builds once and keeps in the user cache (the embedded models)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def cache_root() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("dialforge"))


def cached_build(folder: str, build: Callable[[Path], object]) -> Path:
    """Build into a private folder, then rename: concurrent first uses each build, the first
    rename wins, and a half-built folder is never loaded."""
    path = cache_root() / folder
    if (path / "config.json").exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{folder}-building-"))
    try:
        build(tmp / "model")
        if path.exists() and not (path / "config.json").exists():
            shutil.rmtree(path, ignore_errors=True)
        try:
            (tmp / "model").rename(path)
        except OSError:
            if not (path / "config.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path
