"""Scale-out figures (issue 16), side by side in one run, servers in their own processes:

1. endpoint fleet: `answer` against 1 vs 2 loopback servers, each answering after 50 ms and
   working on at most 32 requests at once (429 above that), 32 in flight per endpoint; then
   the 2-server run again with one server killed half-way;
2. local executor vs Ray with 2 workers against one 50 ms server, 16 in flight per worker
   (Ray warmed up first: its start-up is reported on its own), and Ray's overhead per block;
3. N simulated conversations on Ray (2 workers) with one worker process killed mid-run:
   exact counts, no duplicates.

    python benchmarks/scale_out.py [--fleet-jobs 6000] [--ray-jobs 4000] [--conversations 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import orjson
from _common import Meter, free_port

from dialforge.answer import AnswerConfig, answer_async
from dialforge.llm import backend_config
from dialforge.run.kernel import use_executor
from dialforge.run.ray_executor import RayExecutor
from dialforge.simulate import SimulateConfig, simulate_async

LATENCY = 0.05  # --latency changes it


def start_server(capacity: int | None = None) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    cmd = [sys.executable, "-m", "dialforge.testing", "--port", str(port), "--delay", str(LATENCY), "--unique"]
    p = subprocess.Popen(cmd + (["--capacity", str(capacity)] if capacity else []), stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None
    p.stdout.readline()
    return p, f"http://127.0.0.1:{port}/v1"


def lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def when(cond, action) -> threading.Thread:  # type: ignore[no-untyped-def]
    def loop() -> None:
        while not cond():
            time.sleep(0.01)
        action()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t


def answer_run(tmp: Path, name: str, urls: list[str], n: int, conc: int, per_endpoint: int) -> tuple[dict, float]:
    qfile = tmp / "questions.txt"
    if not qfile.exists():
        qfile.write_text("".join(f"synthetic question number {i}?\n" for i in range(max(n, 1))))
    cfg = AnswerConfig(
        prompts=[str(qfile)],
        assistant=backend_config(model="m", base_url=urls if len(urls) > 1 else urls[0], max_concurrency=per_endpoint),
        limit=n,
        concurrency=conc,
    )
    with Meter() as m:
        s = asyncio.run(answer_async(cfg, tmp / name, progress=False))
    return s, m.wall


def fleet(tmp: Path, n: int) -> None:
    servers = [start_server(capacity=32) for _ in range(2)]
    urls = [u for _, u in servers]
    try:
        one, t1 = answer_run(tmp, "fleet1", urls[:1], n, 64, 32)
        two, t2 = answer_run(tmp, "fleet2", urls, n, 64, 32)
        killer = when(lambda: lines(tmp / "fleet2k/conversations.jsonl") >= n // 2, servers[1][0].kill)
        k, tk = answer_run(tmp, "fleet2k", urls, n, 64, 32)
        killer.join()
    finally:
        for p, _ in servers:
            p.kill()
            p.wait()
    man = orjson.loads((tmp / "fleet2k/manifest.json").read_bytes())["stages"]["answer"]
    ms = f"{LATENCY * 1000:.0f} ms"
    print(f"### Endpoint fleet: {n} `answer` jobs, 64 in flight, <= 32 per endpoint, servers at {ms}, cap 32\n")
    print("| run | calls/s | ideal | wall s | errors | per endpoint (calls / failures / taken out) |")
    print("|---|---|---|---|---|---|")
    for label, s, t, ideal, ep in (
        ("1 endpoint", one, t1, round(32 / LATENCY), "-"),
        ("2 endpoints (fleet)", two, t2, round(64 / LATENCY), "-"),
        ("2 endpoints, one killed half-way", k, tk, "-", _eps(man.get("endpoints", {}))),
    ):
        print(f"| {label} | {n / t:.0f} | {ideal} | {t:.1f} | {s['failed']} | {ep} |")
    print(f"\nfleet / one endpoint: {t1 / t2:.2f}x; records after the kill: {k['total']} of {n}\n")


def _eps(eps: dict) -> str:
    return "; ".join(f"{i + 1}: {c['calls']} / {c['failures']} / {c['taken_out']}" for i, c in enumerate(eps.values()))


def local_vs_ray(tmp: Path, n: int) -> None:
    p, url = start_server()
    try:
        with Meter() as boot:
            with use_executor(RayExecutor(workers=2)):
                answer_run(tmp, "ray-warmup", [url], 64, 16, 64)  # starts Ray and its 2 worker processes
        loc, tl = answer_run(tmp, "local", [url], n, 16, 64)
        with use_executor(RayExecutor(workers=2)):
            ray_s, tr = answer_run(tmp, "ray", [url], n, 16, 64)
    finally:
        p.kill()
        p.wait()
    info = orjson.loads((tmp / "ray/manifest.json").read_bytes())["stages"]["answer"]["ray"]
    ms = f"{LATENCY * 1000:.0f} ms"
    print(f"### Local executor vs Ray (2 workers): {n} `answer` jobs, 16 in flight per worker, server at {ms}\n")
    print("| executor | calls/s | ideal | wall s | errors |")
    print("|---|---|---|---|---|")
    print(f"| local (one process, 16 in flight) | {n / tl:.0f} | {16 / LATENCY:.0f} | {tl:.1f} | {loc['failed']} |")
    print(f"| ray, 2 workers x 16 in flight | {n / tr:.0f} | {32 / LATENCY:.0f} | {tr:.1f} | {ray_s['failed']} |")
    print(
        f"\nray / local: {tl / tr:.2f}x; {info['blocks']} blocks of {info['block_size']}; Ray overhead per block "
        f"(driver-seen minus worker time): {info['overhead_s_per_block'] * 1000:.0f} ms, driver merge per block "
        f"{info['merge_s_per_block'] * 1000:.0f} ms; first start of Ray "
        f"(ray.init + 2 worker processes + a 64-job run): {boot.wall:.1f} s\n"
    )


def ray_simulate(tmp: Path, n: int) -> None:
    p, url = start_server()
    out = tmp / "sim"
    killed: list[int] = []

    def block_running() -> bool:
        root = out / "workers"
        return root.is_dir() and any(lines(d / "conversations.jsonl") >= 100 for d in root.glob("simulate.*"))

    def kill() -> None:
        d = next(d for d in (out / "workers").glob("simulate.*") if lines(d / "conversations.jsonl") >= 100)
        pid = int((d / "attempts").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    cfg = SimulateConfig(
        mode="socratic",
        seeds={"free": n},
        max_turns=2,
        user=backend_config(model="sim", base_url=url, max_concurrency=128),
        assistant=backend_config(model="asst", base_url=url, max_concurrency=128),
        concurrency=128,
        stop={"role_flip": False},
        executor={"kind": "ray", "workers": 2},
    )
    try:
        killer = when(block_running, kill)
        with Meter() as m:
            s = asyncio.run(simulate_async(cfg, out, progress=False))
        killer.join()
    finally:
        p.kill()
        p.wait()
    rows = [orjson.loads(x) for x in (out / "conversations.jsonl").read_bytes().splitlines()]
    ids = Counter(r["id"] for r in rows)
    info = orjson.loads((out / "manifest.json").read_bytes())["stages"]["simulate"]["ray"]
    usage = orjson.loads((out / "usage.json").read_bytes())
    calls = sum(c["calls"] for c in usage["totals"].values())
    print(f"### {n} simulated conversations on Ray (2 workers), one worker process killed mid-run\n")
    print("| conversations planned | records | unique ids | duplicates | termination | block retries | "
          "jobs kept from the killed attempt | calls counted | wall s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {n} | {len(rows)} | {len(ids)} | {sum(v - 1 for v in ids.values())} | {s['termination_reasons']} | "
        f"{info['block_retries']} | {info['jobs_kept_from_lost_attempts']} | {calls} | {m.wall:.1f} |"
    )
    print(f"\nworker killed: {'yes (pid ' + str(killed[0]) + ')' if killed else 'no'}; blocks {info['blocks']} "
          f"of {info['block_size']}; {n * 4} calls expected; driver merge per block "
          f"{info.get('merge_s_per_block', 0) * 1000:.0f} ms\n")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fleet-jobs", type=int, default=6000)
    ap.add_argument("--ray-jobs", type=int, default=4000)
    ap.add_argument("--conversations", type=int, default=20000)
    ap.add_argument("--latency", type=float, default=0.05, help="server answer delay in seconds")
    args = ap.parse_args()
    global LATENCY
    LATENCY = args.latency
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} cores, load average {load:.1f} at the start; Python {sys.version.split()[0]}")
    print(f"servers answer after {LATENCY * 1000:.0f} ms\n")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        fleet(tmp, args.fleet_jobs)
        local_vs_ray(tmp, args.ray_jobs)
        if args.conversations:
            ray_simulate(tmp, args.conversations)


if __name__ == "__main__":
    main()
