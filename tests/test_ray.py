"""The Ray executor on a real two-node Ray cluster on loopback (ray.cluster_utils.Cluster: a
head and a second node, each its own raylet and worker processes), against a loopback
server: byte-identical outputs to a local run, a worker process or the second node killed
mid-run (0 lost, 0 duplicated), the driver killed and the run resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from helpers import reply_by_hash, socratic_config

from dialforge.answer import AnswerConfig, answer
from dialforge.llm import backend_config
from dialforge.llm.cache import CallCache
from dialforge.llm.types import Completion
from dialforge.run.blockdir import BlockDir
from dialforge.run.kernel import ExecutorConfig, LocalExecutor, make_executor, use_executor
from dialforge.run.ray_executor import RayExecutor
from dialforge.simulate import simulate
from dialforge.testing import FakeOpenAIServer


@pytest.fixture(scope="module")
def cluster():
    ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'dialforge[ray]')")
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    c.add_node(num_cpus=1)
    c.wait_for_nodes()
    ray.init(address=c.address, logging_level="WARNING")
    yield c
    ray.shutdown()
    c.shutdown()


def _rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def _calls(run: Path) -> int:
    return sum(c["calls"] for c in json.loads((run / "usage.json").read_text())["totals"].values())


def _watch(cond, action, deadline_s=120.0) -> threading.Thread:
    """Run `action` once `cond()` holds (polling for a condition, not timing)."""

    def loop():
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if cond():
                action()
                return
            time.sleep(0.01)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t


def _block_progress(run: Path) -> list[tuple[Path, int]]:
    """(block folder, conversations it has stored) for every running block."""
    out = []
    for d in sorted((run / "workers").glob("simulate.*")) if (run / "workers").is_dir() else []:
        f = d / "conversations.jsonl"
        try:
            out.append((d, f.read_bytes().count(b"\n") if f.exists() else 0))
        except FileNotFoundError:  # merged and removed meanwhile
            pass
    return out


def test_executor_config_short_form_and_flags():
    assert ExecutorConfig.model_validate("ray").kind == "ray"
    assert isinstance(make_executor({"kind": "ray", "address": "auto"}), RayExecutor)
    assert isinstance(make_executor("local"), LocalExecutor) and isinstance(make_executor(None), LocalExecutor)


def test_use_executor_runs_every_stage_in_its_context_on_that_executor(data_dir, tmp_path):
    ran = []

    class Spy(LocalExecutor):
        async def run(self, stage, run, *, progress=None):
            ran.append(stage.name)
            return await super().run(stage, run, progress=progress)

    with FakeOpenAIServer() as srv:
        cfg = AnswerConfig(
            prompts=[str(data_dir / "oasst/prompt_lottery_en_250_text.jsonl")],
            assistant=backend_config(model="a", base_url=srv.base_url),
            limit=3,
        )
        with use_executor(Spy()):
            answer(cfg, tmp_path / "a", progress=False)
        answer(cfg, tmp_path / "b", progress=False)
    assert ran == ["answer"]


def test_a_block_reads_the_runs_cache_and_writes_only_its_own(tmp_path):
    done = Completion(texts=["cached"], finish_reasons=["stop"], model="m")
    run_cache = CallCache(tmp_path / "cache.sqlite")
    run_cache.put("k-run", done)
    block = BlockDir(tmp_path / "workers/b", tmp_path / "cache.sqlite")
    block.cache.put("k-new", done)
    assert block.cache.get("k-run").text == "cached" and block.cache.get("k-new").text == "cached"
    assert run_cache.get("k-new") is None and len(block.cache) == 1
    block.close()


def test_worker_cache_merges_once_per_tag(tmp_path):
    src = CallCache(tmp_path / "w.sqlite")
    src.record("s", None, "k1", Completion(texts=["a"], finish_reasons=["stop"], model="m"))
    from dialforge.llm.usage import UsageCounter

    src.record("s", UsageCounter(calls=3, prompt_tokens=7), None, Completion(model="m"))
    dst = CallCache(tmp_path / "run.sqlite")
    assert dst.merge("b1", src.call_rows(), src.usage_rows())
    assert not dst.merge("b1", src.call_rows(), src.usage_rows())  # a second merge adds nothing
    assert len(dst) == 1 and dst.get("k1").text == "a"
    assert [r[:4] for r in dst.usage_rows()] == [("s", "m", 3, 7)]


@pytest.mark.slow
def test_ray_run_writes_the_same_bytes_as_a_local_run_and_retries_failed_jobs(cluster, data_dir, tmp_path):
    with FakeOpenAIServer(reply=reply_by_hash) as srv:
        simulate(socratic_config(data_dir, srv, n=24), tmp_path / "local", progress=False)
        with use_executor(RayExecutor(block_size=5)):
            s = simulate(socratic_config(data_dir, srv, n=24), tmp_path / "ray", progress=False)
        # a local run with 3 errored conversations, resumed on Ray: the failed ones are retried
        srv.inject("500", times=3)
        first = simulate(socratic_config(data_dir, srv, n=24), tmp_path / "mixed", progress=False)
        cfg = socratic_config(data_dir, srv, n=24, executor={"kind": "ray", "block_size": 5})
        again = simulate(cfg, tmp_path / "mixed", progress=False)
    ref = (tmp_path / "local/conversations.jsonl").read_bytes()
    assert (tmp_path / "ray/conversations.jsonl").read_bytes() == ref
    assert s["conversations"] == 24 and s["new"] == 24
    info = json.loads((tmp_path / "ray/manifest.json").read_text())["stages"]["simulate"]["ray"]
    assert info["blocks"] == 5 and info["nodes"] == 2 and info["block_retries"] == 0
    assert _calls(tmp_path / "ray") == _calls(tmp_path / "local")  # usage merged from the workers
    assert first["termination_reasons"].get("error") == 3
    assert again["retried"] == 3 and again["new"] == 3 and again["termination_reasons"] == {"max_turns": 24}
    assert (tmp_path / "mixed/conversations.jsonl").read_bytes() == ref
    assert not (tmp_path / "ray/workers").exists()


@pytest.mark.slow
def test_a_worker_killed_mid_block_is_retried_nothing_lost_nor_duplicated(cluster, data_dir, tmp_path):
    with FakeOpenAIServer(reply=reply_by_hash, delay_s=0.02) as srv:
        simulate(socratic_config(data_dir, srv, n=40), tmp_path / "ref", progress=False)
        served = srv.served
        out = tmp_path / "run"
        killed: list[int] = []

        def started():
            return any(n >= 3 for _, n in _block_progress(out))

        def kill():
            d = next(d for d, n in _block_progress(out) if n >= 3)
            pid = int((d / "attempts").read_text().split()[0])
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

        w = _watch(started, kill)
        with use_executor(RayExecutor(block_size=10)):
            s = simulate(socratic_config(data_dir, srv, n=40), out, progress=False)
        w.join()
        served = srv.served - served
    assert killed, "no block was running long enough to be killed"
    rows = _rows(out / "conversations.jsonl")
    assert len(rows) == 40 and len({r["id"] for r in rows}) == 40
    assert (out / "conversations.jsonl").read_bytes() == (tmp_path / "ref/conversations.jsonl").read_bytes()
    info = json.loads((out / "manifest.json").read_text())["stages"]["simulate"]["ray"]
    assert info["block_retries"] == 1 and info["jobs_kept_from_lost_attempts"] >= 3
    assert s["termination_reasons"] == {"max_turns": 40}
    assert 0 <= served - _calls(out) <= 4  # only requests in flight at the kill are uncounted


@pytest.mark.slow
def test_a_block_ray_gives_up_on_keeps_what_it_finished_and_the_rest_is_retried_next_run(cluster, data_dir, tmp_path):
    with FakeOpenAIServer(reply=reply_by_hash, delay_s=0.02) as srv:
        simulate(socratic_config(data_dir, srv, n=40), tmp_path / "ref", progress=False)
        out = tmp_path / "run"
        kept: list[int] = []

        def kill():
            d, n = next((d, n) for d, n in _block_progress(out) if n >= 3)
            kept.append(n)
            os.kill(int((d / "attempts").read_text().split()[0]), signal.SIGKILL)

        w = _watch(lambda: any(n >= 3 for _, n in _block_progress(out)), kill)
        with use_executor(RayExecutor(block_size=10, max_retries=0)):
            s = simulate(socratic_config(data_dir, srv, n=40), out, progress=False)
        w.join()
        lost = s["termination_reasons"].get("error", 0)
        assert kept and 0 < lost <= 10 - kept[0]  # the killed block's finished jobs were kept
        errors = [r["meta"]["error"] for r in _rows(out / "conversations.jsonl") if "error" in r["meta"]]
        assert len(errors) == lost and all(e.startswith("block lost: ") for e in errors)
        again = simulate(socratic_config(data_dir, srv, n=40), out, progress=False)
    assert again["retried"] == lost and again["termination_reasons"] == {"max_turns": 40}
    assert (out / "conversations.jsonl").read_bytes() == (tmp_path / "ref/conversations.jsonl").read_bytes()


@pytest.mark.slow
def test_driver_killed_then_a_local_rerun_merges_what_workers_finished(cluster, data_dir, tmp_path):
    with FakeOpenAIServer(reply=reply_by_hash, delay_s=0.02) as srv:
        simulate(socratic_config(data_dir, srv, n=40), tmp_path / "ref", progress=False)
        cfg = socratic_config(data_dir, srv, n=40).model_dump(mode="json", exclude_defaults=True)
        cfg["executor"] = {"kind": "ray", "block_size": 10}
        path = tmp_path / "sim.yaml"
        path.write_text(yaml.safe_dump(cfg))
        out = tmp_path / "run"
        served = srv.served
        cmd = [sys.executable, "-m", "dialforge.cli", "simulate", "--config", str(path), "--out", str(out)]
        p = subprocess.Popen([*cmd, "--ray-address", cluster.address], stderr=subprocess.DEVNULL)
        end = time.monotonic() + 180
        while time.monotonic() < end and not any(n >= 3 for _, n in _block_progress(out)):
            time.sleep(0.01)  # polling for a condition, not timing
        pids = [int(x) for d, _ in _block_progress(out) for x in (d / "attempts").read_text().split()]
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        end = time.monotonic() + 60
        while time.monotonic() < end and any(_alive(x) for x in pids):
            time.sleep(0.05)  # Ray ends a dead driver's workers; wait for that, not for a time
        assert any(n for _, n in _block_progress(out))
        r = subprocess.run([*cmd, "--executor", "local"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        served = srv.served - served
    assert (out / "conversations.jsonl").read_bytes() == (tmp_path / "ref/conversations.jsonl").read_bytes()
    assert "an interrupted worker left in" in (out / "run.log").read_text()
    assert not (out / "workers").exists()
    assert 0 <= served - _calls(out) <= 8  # in flight at the kill: two blocks of concurrency 4


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by its raylet) is dead for our purpose
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.mark.slow
def test_the_second_node_killed_mid_run(cluster, data_dir, tmp_path):
    """Last in the module: it removes a node (and adds one back for anything after it)."""
    second = next(n for n in cluster.list_all_nodes() if not n.head)
    with FakeOpenAIServer(reply=reply_by_hash, delay_s=0.02) as srv:
        simulate(socratic_config(data_dir, srv, n=40), tmp_path / "ref", progress=False)
        out = tmp_path / "run"
        w = _watch(lambda: sum(n for _, n in _block_progress(out)) >= 6, lambda: cluster.remove_node(second))
        with use_executor(RayExecutor(block_size=10, workers=2)):
            s = simulate(socratic_config(data_dir, srv, n=40), out, progress=False)
        w.join()
    try:
        assert not any(n is second for n in cluster.list_all_nodes())
        rows = _rows(out / "conversations.jsonl")
        assert len(rows) == 40 and len({r["id"] for r in rows}) == 40
        assert (out / "conversations.jsonl").read_bytes() == (tmp_path / "ref/conversations.jsonl").read_bytes()
        assert s["termination_reasons"] == {"max_turns": 40}
        info = json.loads((out / "manifest.json").read_text())["stages"]["simulate"]["ray"]
        assert info["block_retries"] >= 1
    finally:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()


@pytest.mark.slow
def test_an_unknown_executor_is_one_line_and_exit_2(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "dialforge.cli", "answer", "--prompts", "x.txt", "--out", str(tmp_path / "o"),
         "--model", "m", "--base-url", "http://127.0.0.1:9/v1", "--executor", "dask"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 2 and r.stderr.strip() == "error: --executor must be local or ray, not 'dask'"
