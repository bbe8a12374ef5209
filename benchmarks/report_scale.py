"""The report at scale: a synthetic run of N conversations x T user turns (each answered), with
scores and a strategy library, rendered with `dialforge.report.write_report`, then opened in
headless Chromium (DevTools protocol) until the page's script says it is ready.

    python benchmarks/report_scale.py --n 10000 --turns 8 --loads 3

Reports: the file size, the render time in Python, and in Chromium (the page's own
performance.now(), from navigation start): the file read, the first 100 rows drawn with the
controls filled (the texts still decoding), and ready (every text decoded and indexed: search
and reading dialogues work); then the time one search and one filter take in the page. The text is
random words from a fixed synthetic vocabulary (user turns ~22 words, replies ~70), about the
length of real chat turns; it compresses less well than real text, so real runs of the same
shape make smaller files.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SYLLABLES = ["ka", "lo", "mi", "ren", "tu", "sa", "vo", "ne", "gri", "pa", "dul", "fe", "shi", "mo", "ta", "qua"]
REASONS = ["max_turns", "simulator_end", "goodbye", "repetition", "rejections"]


def _vocab(rng: random.Random, n: int = 3000) -> list[str]:
    return ["".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4))) for _ in range(n)]


def _text(rng: random.Random, vocab: list[str], words: int) -> str:
    return " ".join(rng.choice(vocab) for _ in range(max(1, int(rng.gauss(words, words / 3))))) + "?"


def build_run(root: Path, n: int, turns: int, sims: int = 2, strategies: int = 300, seed: int = 0) -> None:
    rng = random.Random(seed)
    vocab = _vocab(rng)
    lib = [
        {
            "id": f"s-{i:04d}",
            "text": _text(rng, vocab, 8),
            "size": rng.randint(1, 60),
            "members": [f"m{i}-{k}" for k in range(rng.randint(1, 5))],
            "examples": [{"instruction": _text(rng, vocab, 20)} for _ in range(3)],
            "centroid": [rng.gauss(0, 1) for _ in range(16)],
        }
        for i in range(strategies)
    ]
    (root / "induce").mkdir(parents=True)
    (root / "induce/library.json").write_text(json.dumps({"strategies": lib, "counts": {"extracted": 5000}}))
    per_sim = n // sims
    for s in range(sims):
        d = root / "simulate" / f"sim{s}"
        d.mkdir(parents=True)
        with (d / "conversations.jsonl").open("w") as fc, (d / "scores.jsonl").open("w") as fs:
            for i in range(per_sim):
                msgs = []
                for _ in range(turns):
                    strat = lib[rng.randrange(strategies)]["id"]
                    msgs.append({"role": "user", "content": _text(rng, vocab, 22), "meta": {"strategy_id": strat}})
                    msgs.append({"role": "assistant", "content": _text(rng, vocab, 70)})
                cid = f"{s}-{i:06d}"
                meta = {"termination_reason": rng.choice(REASONS), "seed_id": f"seed{i}", "sample_index": 0}
                fc.write(json.dumps({"id": cid, "messages": msgs, "meta": meta}) + "\n")
                score = {"id": cid, "user_turns": turns, "mtld": rng.uniform(20, 400), "distinct_1": rng.random(),
                         "follow_up_rate": rng.random()}  # fmt: skip
                fs.write(json.dumps(score) + "\n")
        (d / "manifest.json").write_text(json.dumps({"command": "simulate", "models": {"user": "synthetic"}}))
        (d / "scores_summary.json").write_text(json.dumps({"dataset": {"conversations": per_sim}}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--turns", type=int, default=8)
    ap.add_argument("--loads", type=int, default=3)
    ap.add_argument("--keep", type=Path, help="write the run and the page here instead of a temporary folder")
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from dialforge.report import write_report
    from dialforge.report.browser import load

    with tempfile.TemporaryDirectory() as tmp:
        root = a.keep or Path(tmp) / "run"
        t0 = time.perf_counter()
        build_run(root, a.n, a.turns)
        built = time.perf_counter() - t0
        raw = sum(p.stat().st_size for p in root.rglob("*.jsonl"))
        t0 = time.perf_counter()
        page = write_report([root], root / "report.html")
        render_s = time.perf_counter() - t0
        search = (
            "(function () { var t = performance.now(); var q = document.getElementById('q'); q.value = 'kalo';"
            " q.dispatchEvent(new Event('input')); return [performance.now() - t,"
            " document.body.getAttribute('data-matches')]; })()"
        )
        filt = (
            "(function () { var t = performance.now(); var s = document.getElementById('reason'); s.value = '1';"
            " s.dispatchEvent(new Event('change')); return [performance.now() - t,"
            " document.body.getAttribute('data-matches')]; })()"
        )
        nav = "Math.round(performance.getEntriesByType('navigation')[0].responseEnd)"
        timing = "JSON.parse(document.body.getAttribute('data-timing'))"
        loads = [load(page, [search, filt, nav, timing], timeout=120) for _ in range(a.loads)]
        for r in loads:
            assert r.ready == "yes" and not r.errors, (r.ready, r.errors)
        ready = [r.ready_ms for r in loads if r.ready_ms is not None]
        rows = [r.results[3]["rows"] for r in loads]
        print(
            f"conversations {a.n:,} x {a.turns} user turns (+ replies); JSONL {raw / 1e6:.1f} MB; built {built:.1f} s"
        )
        print(f"page {page.stat().st_size / 1e6:.1f} MB; render in Python {render_s:.1f} s")
        print(f"Chromium, ms from navigation start: file read {[r.results[2] for r in loads]}, first rows drawn "
              f"{rows} (median {statistics.median(rows):.0f}), ready with every text decoded and indexed "
              f"{[round(x) for x in ready]} (median {statistics.median(ready):.0f})")  # fmt: skip
        print(f"search 'kalo': {[round(r.results[0][0]) for r in loads]} ms, {loads[0].results[0][1]} matches")
        print(f"filter by reason: {[round(r.results[1][0]) for r in loads]} ms, {loads[0].results[1][1]} matches")
        print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
