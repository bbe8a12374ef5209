"""Realism card at scale: 10k simulated vs 10k real conversations, embeddings cached.

    python benchmarks/realism_scale.py [--n 10000] [--workdir /tmp/realism-bench]

REAL: 10k conversations drawn in turn from the vendored real OASST data (100 trees as
threads, the HH-derived seed threads, the 250 prompt-lottery openings). SIM: 10k of the
same conversations with roles swapped (assistant answers posed as user turns). Every message
gets a conversation tag ("[r123] ", "[s123] ") so all texts are distinct and the cache
really holds one vector per text. A first, untimed-for-the-claim run fills the embedding
cache; the figure is the wall time of the `dialforge realism ... --json` command (a fresh
process: imports, reading both files, sampling, all figures) with the cache warm.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from dialforge.conversation import Conversation
from dialforge.io import read_conversations, write_conversations
from dialforge.realism import realism

DATA = Path(__file__).resolve().parents[1] / "data" / "oasst"


def pool() -> list[list[tuple[str, str]]]:
    convs = read_conversations(DATA / "en_100_tree.jsonl") + read_conversations(DATA / "realistic_seed_data.json")
    rows = [[(m.role, m.content) for m in c.messages] for c in convs]
    rows += [[("user", json.loads(x))] for x in (DATA / "prompt_lottery_en_250_text.jsonl").read_text().splitlines()]
    return rows


def build(n: int, tag: str, swap: bool, rows: list[list[tuple[str, str]]]) -> list[Conversation]:
    flip = {"user": "assistant", "assistant": "user"}
    out = []
    for i in range(n):
        msgs = rows[(i * 7 if swap else i) % len(rows)]
        if swap:
            msgs = [(flip[r], t) for r, t in msgs]
            while msgs and msgs[0][0] != "user":
                msgs = msgs[1:]
            if not msgs:
                msgs = [("user", rows[i % len(rows)][0][1])]
        out.append(
            Conversation.from_messages(
                [{"role": r, "content": f"[{tag}{i}] {t}"} for r, t in msgs], meta={"group": f"{tag}{i}"}
            )
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/realism-bench"))
    args = ap.parse_args()
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    rows = pool()
    sim, real = work / "sim.jsonl", work / "real.jsonl"
    write_conversations(build(args.n, "s", True, rows), sim)
    write_conversations(build(args.n, "r", False, rows), real)
    cache = work / "cache"
    t0 = time.perf_counter()
    card = realism(sim, real, cache_dir=str(cache))
    cold = time.perf_counter() - t0
    print(f"cold (fills the cache): {cold:.1f} s, in-process card {card.seconds} s", flush=True)
    cmd = [sys.executable, "-m", "dialforge.cli", "realism", str(sim), "--real", str(real), "--json"]
    cmd += ["--cache-dir", str(cache)]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, check=True)
    warm = time.perf_counter() - t0
    fig = json.loads(r.stdout)
    print(
        json.dumps(
            {
                "conversations_per_side": args.n,
                "cpus": os.cpu_count(),
                "load_avg_1m": round(os.getloadavg()[0], 1),
                "warm_cli_wall_s": round(warm, 1),
                "cold_in_process_s": round(cold, 1),
                "sample_sizes": fig["sample_sizes"],
                "discriminator_auc": fig["discriminator_auc"],
                "mauve": fig["mauve"],
                "overall_realism": fig["overall_realism"],
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
