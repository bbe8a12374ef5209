"""Ctrl-C on the installed console script: one line saying the run was interrupted and that
the same command resumes it, exit 130; the re-run finishes and keeps what was written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from dialforge.testing import FakeOpenAIServer

ROOT = Path(__file__).resolve().parents[1]


def _ctrl_c_on() -> None:
    """The child takes Ctrl-C even when this suite runs as a shell's background job (`cmd &`
    starts it with SIGINT ignored, and Python then keeps ignoring it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for(pred, what: str, p: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if p.poll() is not None:
            raise AssertionError(f"process ended before {what}: {p.stderr.read() if p.stderr else ''}")
        if time.monotonic() > deadline:
            p.kill()
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _assert_interrupted(p: subprocess.Popen, cmd: str) -> None:
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines, err  # (training may print the libraries' progress bars before it)
    assert sum("interrupted" in ln for ln in lines) == 1, err
    assert lines[-1].startswith(f"interrupted: dialforge {cmd} stopped by Ctrl-C"), err
    assert "same command resumes" in lines[-1]


@pytest.mark.slow
def test_ctrl_c_on_simulate_exits_130_and_the_same_command_resumes(tmp_path, data_dir, dialforge_cli):
    gate = threading.Event()
    calls = {"n": 0}
    lock = threading.Lock()

    def reply(body):
        with lock:
            calls["n"] += 1
            n = calls["n"]
        if n > 6:  # the first conversations finish, then the server stalls: the run is mid-flight
            gate.wait(120)
        last = body["messages"][-1]["content"]
        return f"{body['model']} {n} {abs(hash(last)) % 10**8}?"

    with FakeOpenAIServer(reply=reply) as srv:
        cfg = {
            "mode": "socratic",
            "seeds": {"questions": [str(data_dir / "oasst/prompt_lottery_en_250_text.jsonl")], "limit": 6},
            "user": {"model": "sim", "base_url": srv.base_url},
            "assistant": {"model": "asst", "base_url": srv.base_url},
            "max_turns": 2,
            "concurrency": 1,
        }
        path = tmp_path / "sim.yaml"
        path.write_text(yaml.safe_dump(cfg))
        out = tmp_path / "run"
        cmd = [*dialforge_cli, "simulate", "--config", str(path), "--out", str(out)]
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=_ctrl_c_on)
        conv_file = out / "conversations.jsonl"
        _wait_for(lambda: calls["n"] > 6, "the stalled request", p)
        p.send_signal(signal.SIGINT)
        _assert_interrupted(p, "simulate")
        before = conv_file.read_bytes() if conv_file.exists() else b""
        assert before, "the conversations finished before Ctrl-C were written"
        gate.set()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
    after = conv_file.read_bytes()
    assert after.startswith(before)  # nothing already written is lost
    rows = [json.loads(x) for x in after.splitlines()]
    assert len(rows) == 6 and len({r["id"] for r in rows}) == 6


@pytest.mark.slow
def test_ctrl_c_on_train_exits_130(tmp_path, tiny_model_dir, dialforge_cli):
    data = tmp_path / "d.jsonl"
    rows = [
        {"messages": [{"role": "user", "content": f"question {i} about tea"}, {"role": "assistant", "content": "ok"}]}
        for i in range(16)
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = tmp_path / "train.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "kind": "chat",
                "data": [str(data)],
                "model": str(tiny_model_dir),
                "out": str(tmp_path / "t"),
                "max_steps": 400,
                "save_steps": 2,
                "batch_size": 2,
                "lora": False,
                "template": "chatml",
                "max_length": 64,
            }
        )
    )
    cmd = [*dialforge_cli, "train", "chat", "--config", str(cfg)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=_ctrl_c_on
    )
    _wait_for(lambda: (tmp_path / "t" / "checkpoint-2" / "trainer_state.json").exists(), "a checkpoint", p)
    p.send_signal(signal.SIGINT)
    _assert_interrupted(p, "train")
    assert not (tmp_path / "t" / "final").exists()
