"""The embedded real model (smollm2-135m) per simulator mode, from finished runs (issue 23).

    python benchmarks/embedded_model.py RUN_DIR [SELFTALK_DIR ...]

RUN_DIR: a `dialforge run examples/quickstart.yaml` directory (strategy, persona, socratic,
with realism cards against held-out OASST users); SELFTALK_DIR: `dialforge selftalk` output
folders. Prints one markdown table: conversations, the share with >= 2 simulated user turns
(seed turns excluded), termination reasons, redrawn (degenerate) user turns, JSON validity
before repair (strategy mode's structured calls), leak rate, and the realism card.

    python benchmarks/embedded_model.py --speed [--llamacpp URL]

Decoding speed of the in-process backend (one torch thread, batch 1 and batch 16) and, with
`--llamacpp`, of a llama.cpp server on the same GGUF (one request at a time, as it serves),
side by side in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from dialforge.simulate.stops import leaks


def _convs(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def _simulated(c: dict[str, Any]) -> list[str]:
    return [m["content"] for m in c["messages"] if m["role"] == "user" and not (m.get("meta") or {}).get("seed")]


def _json_validity(convs: list[dict[str, Any]]) -> tuple[int, int]:
    """(strategy proposals whose JSON parsed and validated before any repair, proposals): every
    accepted strategy turn, plus each rejection (an `unparsable: ...` one did not parse)."""
    ok = n = 0
    for c in convs:
        for m in c["messages"]:
            meta = m.get("meta") or {}
            if m["role"] == "user" and "strategy_id" in meta:
                ok, n = ok + 1, n + 1
                rej = meta.get("rejections") or []
                n += len(rej)
                ok += sum(not str(r).startswith("unparsable") for r in rej)
        rej = c["meta"].get("rejections") or []
        n += len(rej)
        ok += sum(not str(r).startswith("unparsable") for r in rej)
    return ok, n


def mode_row(name: str, folder: Path, card: dict[str, Any] | None, file: str = "conversations.jsonl") -> dict[str, Any]:
    convs = _convs(folder / file)
    n = len(convs)
    two = sum(len(_simulated(c)) >= 2 for c in convs)
    reasons = Counter(c["meta"].get("termination_reason") for c in convs)
    users = [t for c in convs for t in _simulated(c)]
    redrawn = sum(len((m.get("meta") or {}).get("redrawn") or []) for c in convs for m in c["messages"])
    redrawn += sum(len(c["meta"].get("redrawn_user_turns") or []) for c in convs)
    ended_leak = reasons.get("leak", 0)
    leaked_kept = sum(leaks(t) for t in users)
    ok, structured = _json_validity(convs)
    row: dict[str, Any] = {
        "mode": name,
        "conversations": n,
        ">=2 simulated user turns": f"{two}/{n} ({two / n:.0%})" if n else "-",
        "seed-only": sum(len(_simulated(c)) == 0 for c in convs),
        "termination": ", ".join(f"{k} {v}" for k, v in reasons.most_common()),
        "redrawn turns": redrawn,
        "leaks (ended / in kept turns)": f"{ended_leak} / {leaked_kept}",
        "JSON valid before repair": f"{ok}/{structured}" if structured else "-",
        "mean user chars": round(sum(map(len, users)) / len(users)) if users else 0,
    }
    if card:
        row["discriminator AUC"] = card.get("discriminator", {}).get("auc")
        row["MAUVE"] = (card.get("mauve") or {}).get("mauve")
        row["overall realism"] = (card.get("overall") or {}).get("score")
    return row


def _card(folder: Path, name: str = "realism_card.json") -> dict[str, Any] | None:
    p = folder / name
    return json.loads(p.read_text()) if p.exists() else None


def table(rows: list[dict[str, Any]]) -> str:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |")
    return "\n".join(out)


def _fmt(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def report(run: Path, selftalk: list[Path]) -> None:
    rows = []
    sims = sorted(p for p in (run / "simulate").iterdir() if p.is_dir()) if (run / "simulate").exists() else []
    for d in sims:
        rows.append(mode_row(d.name, d, _card(d)))
    floor = _card(sims[0], "realism_floor.json") if sims else None
    for s in selftalk:
        for conv in sorted(s.rglob("dialogues.jsonl")):  # self-talk: loop-N/dialogues.jsonl
            rows.append(mode_row(f"self-talk {conv.parent.relative_to(s)}", conv.parent, None, conv.name))
    print(table(rows))
    if floor:
        auc = floor.get("discriminator", {}).get("auc")
        mauve = (floor.get("mauve") or {}).get("mauve")
        print(f"\nfloor (real vs real): discriminator AUC {auc}, MAUVE {mauve}")
    state = run / "pipeline.json"
    if state.exists():
        p = json.loads(state.read_text())
        print(f"\nwarnings ({len(p.get('warnings') or [])}):")
        for w in p.get("warnings") or []:
            print(f"- {w}")
    walls = {}
    for u in run.rglob("usage.json"):
        walls[str(u.parent.relative_to(run))] = sum(json.loads(u.read_text()).get("stage_wall_s", {}).values())
    if walls:
        print("\nstage wall time (s): " + ", ".join(f"{k} {v:.0f}" for k, v in walls.items()))


async def _speed_local(batch: int, tokens: int) -> float:
    from dialforge.llm import LLM, backend_config, make_backend
    from dialforge.llm.types import SamplingParams

    backend = make_backend(backend_config(model="smollm2-135m", kind="transformers"))
    llm = LLM(backend)
    params = SamplingParams(temperature=0.0, max_tokens=tokens)
    msgs = [
        [{"role": "user", "content": f"Write a short story about a lighthouse keeper number {i}."}]
        for i in range(batch)
    ]
    await llm.complete(msgs[0], params=params.model_copy(update={"max_tokens": 4}))  # load
    t0 = time.perf_counter()
    comps = await asyncio.gather(*(llm.complete(m, params=params, sample_index=i) for i, m in enumerate(msgs)))
    wall = time.perf_counter() - t0
    await backend.aclose()
    return sum(c.usage.completion_tokens for c in comps) / wall


async def _speed_server(url: str, batch: int, tokens: int) -> float:
    from dialforge.llm import LLM, backend_config, make_backend
    from dialforge.llm.types import SamplingParams

    backend = make_backend(backend_config(model="smollm2", base_url=url, max_concurrency=1))
    llm = LLM(backend)
    params = SamplingParams(temperature=0.0, max_tokens=tokens)
    msgs = [
        [{"role": "user", "content": f"Write a short story about a lighthouse keeper number {i}."}]
        for i in range(batch)
    ]
    t0 = time.perf_counter()
    comps = await asyncio.gather(*(llm.complete(m, params=params, sample_index=i) for i, m in enumerate(msgs)))
    wall = time.perf_counter() - t0
    await backend.aclose()
    return sum(c.usage.completion_tokens for c in comps) / wall


def speed(url: str | None, tokens: int) -> None:
    print("| backend | requests | tokens/s |\n|---|---|---|")
    for batch in (1, 16):
        print(f"| in-process transformers (1 thread) | {batch} | {asyncio.run(_speed_local(batch, tokens)):.1f} |")
        if url:
            print(f"| llama.cpp server | {batch} | {asyncio.run(_speed_server(url, batch, tokens)):.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", nargs="?", type=Path)
    ap.add_argument("selftalk", nargs="*", type=Path)
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--llamacpp", help="base URL of a llama.cpp server on the same GGUF")
    ap.add_argument("--tokens", type=int, default=64)
    a = ap.parse_args()
    if a.speed:
        speed(a.llamacpp, a.tokens)
    elif a.run:
        report(a.run, a.selftalk)
    else:
        ap.print_help()
        sys.exit(2)


if __name__ == "__main__":
    main()
