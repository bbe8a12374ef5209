"""Small guarantees a new user meets first: file modes, the offline model name everywhere."""

from __future__ import annotations

import os
import stat

import pytest

from dialforge.io.reader import atomic_write_bytes


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_outputs_are_created_with_the_users_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        atomic_write_bytes(tmp_path / "out.jsonl", b"{}\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.jsonl").stat().st_mode) == 0o666 & ~umask
