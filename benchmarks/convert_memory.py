"""Peak memory of `dialforge convert` as the input grows: readers and writers stream, so the
peak RSS should stay flat from 100 MB to 1 GB (all that grows is the set of ids seen, for the
duplicate-id report).

    python benchmarks/convert_memory.py --sizes-mb 100 1000 [--tmp /tmp]

Input: ShareGPT JSON Lines made here from synthetic text (2-6 turns, ~1.35 KB a record, unique
ids), converted to the canonical OpenAI JSONL by the CLI in a child process; the child's peak
RSS comes from wait4's rusage. Prints a markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

import orjson

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau".split()


def make_input(path: Path, size_mb: int, seed: int = 0) -> int:
    """Write ShareGPT JSONL of about `size_mb` MB; returns the number of records."""
    rng = random.Random(seed)
    target = size_mb * 1_000_000
    written = n = 0
    with path.open("wb", buffering=1 << 20) as f:
        while written < target:
            turns = []
            for t in range(rng.choice((2, 4, 6))):
                text = " ".join(rng.choices(WORDS, k=rng.randint(20, 90)))
                turns.append({"from": "human" if t % 2 == 0 else "gpt", "value": f"synthetic {n} {t}: {text}"})
            line = orjson.dumps({"id": f"syn-{n}", "conversations": turns}) + b"\n"
            f.write(line)
            written += len(line)
            n += 1
    return n


def convert_peak(src: Path, dst: Path) -> tuple[float, float, str]:
    """(peak RSS MiB, wall s, last stderr line) of one `dialforge convert` child process."""
    t0 = time.perf_counter()
    p = subprocess.Popen(
        [sys.executable, "-m", "dialforge.cli", "convert", str(src), str(dst), "--to", "openai"],
        stderr=subprocess.PIPE,
    )
    assert p.stderr is not None
    err = p.stderr.read().decode()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"convert failed ({p.returncode}): {err[-2000:]}")
    return usage.ru_maxrss / 1024, wall, err.strip().splitlines()[-1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes-mb", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--tmp", type=Path, default=Path("/tmp/dialforge-convert-bench"))
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    args = ap.parse_args()
    args.tmp.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in args.sizes_mb:
        src = args.tmp / f"sharegpt_{size}mb.jsonl"
        dst = args.tmp / f"openai_{size}mb.jsonl"
        n = make_input(src, size)
        peak, wall, summary = convert_peak(src, dst)
        rows.append((size, src.stat().st_size, n, peak, wall, dst.stat().st_size))
        print(f"{size} MB: {n} records, peak RSS {peak:.0f} MiB, {wall:.0f} s; {summary}", file=sys.stderr)
        if not args.keep:
            src.unlink()
            dst.unlink()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    print("| input (ShareGPT JSONL) | records | peak RSS of convert | wall | output (OpenAI JSONL) |")
    print("|---|---|---|---|---|")
    for _, size_b, n, peak, wall, out_b in rows:
        print(f"| {size_b / 1e6:,.0f} MB | {n:,} | {peak:,.0f} MiB | {wall:,.0f} s | {out_b / 1e6:,.0f} MB |")


if __name__ == "__main__":
    main()
