"""The stage kernel's guarantees, each through a real command against a loopback server:
one process per run directory, kill -9 anywhere, retries of failed jobs, corrupt files,
byte-identical outputs, health warnings."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml
from helpers import reply_by_hash, socratic_config

from dialforge.answer import AnswerConfig, answer
from dialforge.llm import backend_config
from dialforge.run import RecordStore, RunLock
from dialforge.simulate import simulate
from dialforge.testing import FakeOpenAIServer


def _cli(*args, **kw):
    cmd = [sys.executable, "-m", "dialforge.cli", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


@pytest.mark.slow
def test_second_process_on_a_run_dir_exits_2_naming_the_holder(data_dir, tmp_path):
    out = tmp_path / "run"
    with RunLock(out):
        r = _cli("answer", "--prompts", data_dir / "oasst/en_100_text.jsonl", "--out", out, "--model", "m",
                 "--base-url", "http://127.0.0.1:9/v1")  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert f"in use by process {os.getpid()}" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_identical_runs_write_identical_bytes_whatever_the_completion_order(data_dir, tmp_path):
    with FakeOpenAIServer(reply=reply_by_hash) as srv:
        srv.inject("hang", times=3, seconds=0.3)  # the first conversations finish last
        simulate(socratic_config(data_dir, srv), tmp_path / "a", progress=False)
        simulate(socratic_config(data_dir, srv), tmp_path / "b", progress=False)
    a = (tmp_path / "a/conversations.jsonl").read_bytes()
    assert a == (tmp_path / "b/conversations.jsonl").read_bytes()
    assert len(a.splitlines()) == 12


def test_rerun_retries_errored_conversations(data_dir, tmp_path):
    with FakeOpenAIServer(reply=reply_by_hash) as srv:
        srv.inject("500", times=3)  # no retries configured: three conversations end in error
        s1 = simulate(socratic_config(data_dir, srv), tmp_path / "run", progress=False)
        assert s1["termination_reasons"].get("error") == 3
        assert any("3/12 jobs failed" in w for w in s1["warnings"])
        s2 = simulate(socratic_config(data_dir, srv), tmp_path / "run", progress=False)
    assert s2["retried"] == 3 and s2["new"] == 3
    assert s2["termination_reasons"] == {"max_turns": 12} and s2["warnings"] == []
    rows = [json.loads(x) for x in (tmp_path / "run/conversations.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and len({r["id"] for r in rows}) == 12
    assert "retrying 3 failed jobs" in (tmp_path / "run/run.log").read_text()


def test_corrupt_record_mid_file_is_skipped_and_later_records_kept(tmp_path, caplog):
    path = tmp_path / "r.jsonl"
    lines = [json.dumps({"id": f"r{i}", "x": i}) for i in range(6)]
    path.write_text("\n".join(lines[:2] + ['{"id": "r2", "x": '] + lines[3:]) + "\n")
    with caplog.at_level(logging.WARNING, logger="dialforge"):
        store = RecordStore(path)
    assert store.ids == {"r0", "r1", "r3", "r4", "r5"}
    assert f"{path}:3: corrupt record skipped" in caplog.text
    assert (tmp_path / "r.jsonl.corrupt").read_text() == '{"id": "r2", "x": \n'
    assert store.append({"id": "r2", "x": 2})
    store.rewrite([f"r{i}" for i in range(6)])
    store.close()
    assert [json.loads(x) for x in path.read_text().splitlines()] == [{"id": f"r{i}", "x": i} for i in range(6)]


def _answer_cfg(data_dir, srv, limit=10):
    return AnswerConfig(
        prompts=[str(data_dir / "oasst/prompt_lottery_en_250_text.jsonl")],
        assistant=backend_config(model="asst", base_url=srv.base_url),
        limit=limit,
    )


def test_corrupt_cache_usage_and_manifest_are_moved_aside_and_rebuilt(data_dir, tmp_path, caplog):
    out = tmp_path / "run"
    with FakeOpenAIServer(reply=reply_by_hash) as srv:
        answer(_answer_cfg(data_dir, srv), out, progress=False)
        rows = (out / "conversations.jsonl").read_bytes()
        (out / "cache.sqlite").write_bytes(b"this is not a database" * 100)
        for side in ("cache.sqlite-wal", "cache.sqlite-shm"):
            (out / side).unlink(missing_ok=True)
        (out / "usage.json").write_text("{ broken")
        (out / "manifest.json").write_text("[1, 2")
        with caplog.at_level(logging.WARNING, logger="dialforge"):
            s = answer(_answer_cfg(data_dir, srv, limit=12), out, progress=False)
    assert s["already_done"] == 10 and s["answered_now"] == 2 and s["failed"] == 0
    assert (out / "conversations.jsonl").read_bytes().startswith(rows)
    for name in ("cache.sqlite", "usage.json", "manifest.json"):
        assert f"{name} is" in caplog.text, name
        assert list(out.glob(f"{name}.corrupt-*")), name
    usage = json.loads((out / "usage.json").read_text())
    assert usage["stages"]["answer"]["asst"]["calls"] == 2  # the ledger was rebuilt fresh
    assert json.loads((out / "manifest.json").read_text())["stages"]["answer"]["jobs"] == 12


@pytest.mark.slow
def test_kill_9_then_rerun_loses_nothing_and_counts_every_request_once(data_dir, tmp_path):
    n = 40
    with FakeOpenAIServer(reply=reply_by_hash, delay_s=0.01) as srv:
        cfg = socratic_config(data_dir, srv, n=n).model_dump(mode="json", exclude_defaults=True)
        cfg["concurrency"] = 4
        path = tmp_path / "sim.yaml"
        path.write_text(yaml.safe_dump(cfg))
        ref = tmp_path / "ref"
        r = _cli("simulate", "--config", path, "--out", ref)
        assert r.returncode == 0, r.stderr
        served_ref = srv.served
        out = tmp_path / "run"
        cmd = [sys.executable, "-m", "dialforge.cli", "simulate", "--config", str(path), "--out", str(out)]
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        conv_file = out / "conversations.jsonl"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (conv_file.exists() and conv_file.read_bytes().count(b"\n") >= 8):
            time.sleep(0.005)  # polling for a condition, not timing
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        before = set(conv_file.read_bytes().splitlines())
        assert 8 <= len(before) < n
        r = _cli("simulate", "--config", path, "--out", out)
        assert r.returncode == 0, r.stderr
        seen = srv.served - served_ref  # answers the server sent to the killed run and the re-run
    after = conv_file.read_bytes()
    assert after == (ref / "conversations.jsonl").read_bytes()  # equal to an uninterrupted run
    assert before <= set(after.splitlines())  # finished conversations are kept as they were
    usage = json.loads((out / "usage.json").read_text())
    calls = sum(c["calls"] for c in usage["totals"].values())
    assert 0 <= seen - calls <= 4  # only requests in flight at the kill (concurrency 4) are not counted


def test_health_warnings_when_every_conversation_fails_one_way(data_dir, tmp_path):
    def assistant_like(body):
        return "Sure, here is what I think." if body["model"] == "sim" else "Answer."

    with FakeOpenAIServer(reply=assistant_like) as srv:
        s = simulate(socratic_config(data_dir, srv, n=5), tmp_path / "run", progress=False)
    assert s["termination_reasons"] == {"role_flip": 5}
    assert "simulate: 5/5 conversations ended on role_flip" in s["warnings"]
    assert "simulate: 5/5 conversations have no follow-up user turn" in s["warnings"]
    manifest = json.loads((tmp_path / "run/manifest.json").read_text())
    assert manifest["stages"]["simulate"]["warnings"] == s["warnings"]
    assert "health warning: simulate: 5/5 conversations ended on role_flip" in (tmp_path / "run/run.log").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("strict", [False, True])
def test_cli_prints_warnings_and_strict_exits_3(data_dir, tmp_path, strict):
    def assistant_like(body):
        return "Sure, here is what I think." if body["model"] == "sim" else "Answer."

    with FakeOpenAIServer(reply=assistant_like) as srv:
        cfg = socratic_config(data_dir, srv, n=3).model_dump(mode="json", exclude_defaults=True)
        path = tmp_path / "sim.yaml"
        path.write_text(yaml.safe_dump(cfg))
        r = _cli("simulate", "--config", path, "--out", tmp_path / "run", *(["--strict"] if strict else []))
    assert r.returncode == (3 if strict else 0), r.stderr
    assert "warning: simulate: 3/3 conversations ended on role_flip" in r.stderr


def test_stage_records_are_streamed_from_the_output_in_plan_order(tmp_path):
    """A stage's summary, health checks and result read its records from the output file
    (plan order, a few passes), so a stage of millions of records is never held in memory."""
    import asyncio

    from dialforge.run import RunDir
    from dialforge.run.kernel import Job, LocalExecutor, Stage
    from dialforge.run.store import LeadingRecords

    class Toy(Stage):
        name = "toy"
        output = "toy.jsonl"
        concurrency = 4

        def plan(self) -> list[Job]:
            return [Job(f"j{i:02d}", i) for i in range(12)]

        async def run_job(self, job, ctx):
            await asyncio.sleep(0.001 * (12 - job.data))  # finish in reverse order
            if job.data % 4 == 3:
                return {"id": job.id, "error": "synthetic failure"}
            return {"id": job.id, "messages": [{"role": "user", "content": "synthetic"}],
                    "meta": {"termination_reason": "rejections"}}  # fmt: skip

        def summarise(self, records):
            return {"seen": len(records), "ids": [r["id"] for r in records][:3]}

    with RunDir(tmp_path / "run", command="toy", config={"toy": 1}) as run:
        res = asyncio.run(LocalExecutor().run(Toy(), run, progress=False))
    assert isinstance(res.records, LeadingRecords) and len(res.records) == 12
    assert [r["id"] for r in res.records] == [f"j{i:02d}" for i in range(12)] == [r["id"] for r in res.records]
    assert res.summary["failed"] == 3 and res.summary["seen"] == 12 and res.summary["ids"] == ["j00", "j01", "j02"]
    assert "toy: 3/12 jobs failed (see run.log)" in res.warnings
    assert "toy: 9/9 conversations ended on rejections" in res.warnings
    assert "toy: 9/9 conversations have no follow-up user turn" in res.warnings
    lines = (tmp_path / "run" / "toy.jsonl").read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == [f"j{i:02d}" for i in range(12)]
    assert list(LeadingRecords(tmp_path / "run" / "toy.jsonl", 0)) == []


def test_usage_wall_time_is_this_sessions_and_the_total_is_kept_apart(tmp_path, monkeypatch):
    """A resumed run's wall time is its own (it was 601.6 s for a 46 s run: the interrupted
    session's time was added); the sum over sessions is `stage_wall_total_s`."""
    from dialforge.llm import usage as usage_mod

    now = [0.0]
    monkeypatch.setattr(usage_mod.time, "monotonic", lambda: now[0])
    first = usage_mod.UsageTracker(tmp_path / "usage.json", flush_every_s=1e9)
    first.start_stage("simulate")
    now[0] = 100.0
    first.end_stage("simulate")  # 100 s, then killed
    now[0] = 1000.0
    resumed = usage_mod.UsageTracker(tmp_path / "usage.json", flush_every_s=1e9)
    resumed.start_stage("simulate")
    now[0] = 1030.0
    resumed.end_stage("simulate")  # 30 s
    data = json.loads((tmp_path / "usage.json").read_text())
    assert data["stage_wall_s"] == {"simulate": 30.0}
    assert data["stage_wall_total_s"] == {"simulate": 130.0}
