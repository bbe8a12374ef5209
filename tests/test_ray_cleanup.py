"""Ray's two agent processes outlive a driver killed with -9 (its GCS, raylet and workers do
not): the next local start ends them, and only them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dialforge.run.ray_executor import reap_orphaned_agents


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _orphan(name: str) -> int:
    """A process named `name` whose parent and process-group leader have exited."""
    r = subprocess.run(
        ["bash", "-c", f"(exec -a {name} sleep 120 >/dev/null 2>&1 & echo $!)"],
        capture_output=True,
        text=True,
        start_new_session=True,
    )
    return int(r.stdout.strip())


def _live_agent(name: str, parent: str) -> tuple[subprocess.Popen, int]:
    """An agent `name` whose parent `parent` (a bash renamed so) lives and leads its own
    process group, as a driver or a raylet does: (the parent, the agent's pid). Its own group,
    so the test does not depend on who leads the group pytest runs in."""
    p = subprocess.Popen(
        ["bash", "-c", f"exec -a {parent} bash -c '(exec -a {name} sleep 120) & echo $!; wait'"],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert p.stdout is not None
    return p, int(p.stdout.readline())


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_orphaned_agents_are_ended_and_live_ones_kept():
    orphans = [_orphan("ray::DashboardAgent"), _orphan("ray::RuntimeEnvAgent")]
    other = _orphan("ray::SomethingElse")  # not an agent: never touched
    driver, by_driver = _live_agent("ray::DashboardAgent", "python-driver")  # its driver lives
    raylet, by_raylet = _live_agent("ray::RuntimeEnvAgent", "raylet")  # its raylet lives
    live = [by_driver, by_raylet]
    try:
        time.sleep(0.3)
        assert all(_alive(p) for p in [*orphans, other, *live])
        ended = reap_orphaned_agents(grace_s=1.0)  # ours, and any a killed run left on this machine
        assert set(orphans) <= set(ended) and not {other, *live} & set(ended)
        deadline = time.monotonic() + 5
        while any(_alive(p) for p in orphans) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(p) for p in orphans)
        assert _alive(other) and all(_alive(p) for p in live)
    finally:
        for p in [*orphans, other, *live]:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        for parent in (driver, raylet):
            parent.wait()


@pytest.mark.slow
def test_a_killed_drivers_local_cluster_leaves_nothing_after_the_next_start(tmp_path):
    pytest.importorskip("ray")
    script = tmp_path / "driver.py"
    script.write_text(
        "import time, ray\n"
        "ray.init(include_dashboard=False, logging_level='WARNING')\n"
        "@ray.remote\ndef f():\n    time.sleep(300)\n"
        "refs = [f.remote() for _ in range(2)]\nprint('started', flush=True)\ntime.sleep(300)\n"
    )
    driver = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert driver.stdout is not None and driver.stdout.readline().strip() == "started"
        time.sleep(3)
        driver.kill()
        driver.wait()
        time.sleep(5)
        group = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _in_group(p, driver.pid)]
        names = sorted(Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")[0].decode() for p in group if _alive(p))
        assert names == ["ray::DashboardAgent", "ray::RuntimeEnvAgent"]  # what Ray leaves (2.60)
        ended = reap_orphaned_agents()
        assert sorted(ended) == sorted(p for p in group if _alive(p) or p in ended)
        time.sleep(1)
        assert not [p for p in group if _alive(p)]
    finally:
        for p in Path("/proc").iterdir():
            if p.name.isdigit() and _in_group(p, driver.pid):
                try:
                    os.kill(int(p.name), signal.SIGKILL)
                except OSError:
                    pass


def _in_group(p: Path, pgid: int) -> bool:
    try:
        return int((p / "stat").read_text().rsplit(")", 1)[1].split()[2]) == pgid
    except (OSError, ValueError, IndexError):
        return False
