"""The bad-input sweep (benchmarks/bad_input_sweep.py, 317 cases across commands) ends with
no traceback: every case is a one-line error with exit 2 or a clean exit 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_bad_input_sweep_has_no_traceback(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/bad_input_sweep.py"), "--work", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1200,
    )
    summary = r.stdout.strip().splitlines()[0]
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "TRACEBACK" not in r.stdout and "other" not in summary, r.stdout[-3000:]
    cases = int(summary.split()[0])
    assert cases >= 196
