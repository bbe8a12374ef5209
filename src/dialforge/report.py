"""`dialforge report RUN_DIR...`: one self-contained HTML page (no network to view it).

Everything from the data is escaped with `html.escape`; the only script is ours and reads
nothing from the data, so a `<script>` inside a conversation shows as text.
"""

from __future__ import annotations

import html
import math
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from . import __version__
from .io.reader import atomic_write_bytes

MAX_DIALOGUES = 40
PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7"]

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#263238;color:#fff;padding:16px 28px}header h1{margin:0;font-size:22px}
main{padding:8px 28px 40px;max-width:1400px}section{background:#fff;border:1px solid #ddd;border-radius:8px;
padding:12px 18px;margin:16px 0}h2{font-size:18px;margin:4px 0 10px}h3{font-size:15px;margin:12px 0 6px}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right;
vertical-align:top}th{background:#f0f3f5}td.l,th.l{text-align:left}.grid{display:flex;flex-wrap:wrap;gap:18px}
.msg{margin:4px 0;padding:6px 10px;border-radius:6px;white-space:pre-wrap;word-wrap:break-word}
.user{background:#e8f1fb}.assistant{background:#f3f3f3}.system,.tool{background:#fff7e0}
.badge{display:inline-block;font-size:11px;padding:1px 6px;border-radius:9px;background:#59a14f;color:#fff;
margin-right:6px}.badge.step{background:#b07aa1}.role{font-weight:600;margin-right:6px}
details{margin:4px 0;border:1px solid #e5e5e5;border-radius:6px;padding:4px 8px}summary{cursor:pointer}
.muted{color:#777}pre{white-space:pre-wrap;background:#f6f8fa;padding:8px;border-radius:6px;max-height:320px;
overflow:auto}svg text{font-size:11px}
"""

SCRIPT = """
document.addEventListener('DOMContentLoaded', function () {
  var n = document.querySelectorAll('details.dialogue').length;
  var el = document.getElementById('dialogue-count');
  if (el) { el.textContent = String(n); }
  document.body.setAttribute('data-ready', 'yes');
});
"""


def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _load_jsonl(p: Path) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in p.read_bytes().splitlines() if x.strip()] if p.exists() else []


def _load_json(p: Path) -> Any:
    return orjson.loads(p.read_bytes()) if p.exists() else None


def discover(root: Path) -> dict[str, Any]:
    """What a run directory holds: simulation runs, a strategy library, usage, manifests."""
    root = Path(root)
    sims = []
    for conv in sorted(root.rglob("conversations.jsonl")):
        d = conv.parent
        if not (d / "manifest.json").exists():
            continue
        name = str(d.relative_to(root)) if d != root else root.name
        sims.append(
            {
                "name": f"{root.name}/{name}" if d != root else name,
                "dir": d,
                "conversations": _load_jsonl(conv),
                "scores": {r["id"]: r for r in _load_jsonl(d / "scores.jsonl")},
                "summary": (_load_json(d / "scores_summary.json") or {}).get("dataset"),
                "manifest": _load_json(d / "manifest.json"),
            }
        )
    for dlg in sorted(root.rglob("loop-*/dialogues.jsonl")):
        sims.append(
            {
                "name": f"{root.name}/{dlg.parent.name}",
                "dir": dlg.parent,
                "conversations": _load_jsonl(dlg),
                "scores": {},
                "summary": None,
                "manifest": None,
            }
        )
    libs = [p for p in [root / "library.json", root / "induce" / "library.json"] if p.exists()]
    usage = {str(p.parent.relative_to(root)) or ".": _load_json(p) for p in sorted(root.rglob("usage.json"))}
    manifests = {str(p.parent.relative_to(root)) or ".": _load_json(p) for p in sorted(root.rglob("manifest.json"))}
    return {
        "root": root,
        "sims": sims,
        "library": _load_json(libs[0]) if libs else None,
        "usage": usage,
        "manifests": manifests,
        "pipeline": _load_json(root / "pipeline.json"),
    }


# -- small SVG charts ------------------------------------------------------------------------
def bar_chart(counts: dict[str, float], width: int = 420, title: str = "") -> str:
    if not counts:
        return '<p class="muted">no data</p>'
    h = 22 * len(counts) + 24
    top = max(counts.values()) or 1
    rows = []
    for i, (k, v) in enumerate(counts.items()):
        w = int((width - 170) * v / top)
        y = 20 + 22 * i
        rows.append(
            f'<text x="0" y="{y + 12}">{esc(str(k)[:24])}</text><rect x="160" y="{y}" width="{w}" '
            f'height="16" fill="{PALETTE[i % len(PALETTE)]}"><title>{esc(k)}: {esc(v)}</title></rect>'
            f'<text x="{165 + w}" y="{y + 12}">{esc(round(v, 3))}</text>'
        )
    return (
        f'<svg width="{width}" height="{h}" role="img" aria-label="{esc(title)}"><text x="0" y="12" '
        f'font-weight="bold">{esc(title)}</text>{"".join(rows)}</svg>'
    )


def histogram(values: list[float], title: str, bins: int = 12, width: int = 320, height: int = 150) -> str:
    vals = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    if hi == lo:
        hi = lo + 1
    counts, edges = np.histogram(vals, bins=bins, range=(lo, hi))
    top = counts.max() or 1
    bw = (width - 20) / bins
    bars = "".join(
        f'<rect x="{10 + i * bw:.1f}" y="{height - 20 - (height - 40) * c / top:.1f}" width="{bw - 2:.1f}" '
        f'height="{(height - 40) * c / top:.1f}" fill="#4e79a7"><title>{edges[i]:.3g}-{edges[i + 1]:.3g}: {c}'
        f"</title></rect>"
        for i, c in enumerate(counts)
    )
    return (
        f'<svg width="{width}" height="{height}" role="img" aria-label="{esc(title)}"><text x="10" y="12" '
        f'font-weight="bold">{esc(title)} (n={len(vals)})</text>{bars}<text x="10" y="{height - 5}">'
        f'{lo:.3g}</text><text x="{width - 40}" y="{height - 5}">{hi:.3g}</text></svg>'
    )


def strategy_map(lib: dict[str, Any], width: int = 760, height: int = 460) -> str:
    strategies = lib.get("strategies", [])
    if not strategies:
        return '<p class="muted">the library has no strategies</p>'
    c = np.asarray([s["centroid"] for s in strategies], dtype=np.float64)
    c = c - c.mean(axis=0)
    if len(c) >= 2:
        _, _, vt = np.linalg.svd(c, full_matrices=False)
        xy = c @ vt[:2].T
    else:
        xy = np.zeros((1, 2))
    if xy.shape[1] < 2:
        xy = np.hstack([xy, np.zeros((len(xy), 1))])
    span = np.ptp(xy, axis=0)
    span[span == 0] = 1
    pts = (xy - xy.min(axis=0)) / span
    biggest = max(s["size"] for s in strategies)
    dots = []
    for (x, y), s in zip(pts, strategies, strict=True):
        r = 3 + 14 * math.sqrt(s["size"] / biggest)
        ex = "\n".join(f"- {e['instruction'][:140]}" for e in s.get("examples", [])[:3])
        dots.append(
            f'<circle class="strategy" cx="{30 + x * (width - 60):.1f}" cy="{30 + y * (height - 60):.1f}" '
            f'r="{r:.1f}" fill="#e15759" fill-opacity="0.55" stroke="#a33"><title>{esc(s["text"])} '
            f"(size {s['size']})\n{esc(ex)}</title></circle>"
        )
    return (
        f'<svg id="strategy-map" width="{width}" height="{height}" style="border:1px solid #eee" role="img" '
        f'aria-label="strategy map">{"".join(dots)}</svg><p class="muted">2-D projection (PCA) of the '
        f"strategy centroids; area ~ cluster size; hover a point for the strategy and real source turns.</p>"
    )


def _table(headers: list[str], rows: list[list[Any]], left: int = 1) -> str:
    th = "".join(f'<th class="{"l" if i < left else ""}">{esc(h)}</th>' for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f'<td class="{"l" if i < left else ""}">{esc(v)}</td>' for i, v in enumerate(r)) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{th}</tr>{body}</table>"


def _dialogue(conv: dict[str, Any], scores: dict[str, Any]) -> str:
    meta = conv.get("meta", {})
    msgs = []
    for m in conv["messages"]:
        mm = m.get("meta") or {}
        badges = ""
        if m["role"] == "user" and mm.get("strategy"):
            badges += f'<span class="badge" title="{esc(mm.get("strategy_id", ""))}">{esc(mm["strategy"])}</span>'
        if m["role"] == "assistant" and mm.get("step"):
            badges += f'<span class="badge step">step: {esc(mm["step"])}</span>'
        if mm.get("seed"):
            badges += '<span class="badge" style="background:#999">seed</span>'
        msgs.append(
            f'<div class="msg {esc(m["role"])}"><span class="role">{esc(m["role"])}</span>{badges}'
            f"{esc(m['content'])}</div>"
        )
    s = scores.get(conv["id"], {})
    wf = meta.get("workflow_eval") or {}
    label = " | ".join(
        x
        for x in [
            f"{meta.get('user_turns', sum(1 for m in conv['messages'] if m['role'] == 'user'))} user turns",
            f"ended: {meta.get('termination_reason')}",
            f"workflow {meta.get('workflow')}: depth {wf.get('depth')}, success {wf.get('success')}" if wf else "",
            f"mtld {s.get('mtld')}" if s else "",
        ]
        if x
    )
    first = next((m["content"] for m in conv["messages"] if m["role"] == "user"), "(no user turn)")
    return (
        f'<details class="dialogue"><summary><code>{esc(conv["id"])}</code> {esc(first[:90])} '
        f'<span class="muted">({esc(label)})</span></summary>{"".join(msgs)}</details>'
    )


def render(roots: list[Path]) -> str:
    found = [discover(r) for r in roots]
    sims = [s for f in found for s in f["sims"]]
    parts = [
        f"<header><h1>dialforge report</h1><div>{esc(', '.join(str(r) for r in roots))} &middot; "
        f"dialforge {esc(__version__)} &middot; {esc(datetime.now(timezone.utc).isoformat(timespec='seconds'))}"
        f"</div></header><main>"
    ]
    # -- summary -------------------------------------------------------------------------------
    sec = ['<section id="summary"><h2>Run summary</h2>']
    for f in found:
        sec.append(f"<h3>{esc(f['root'])}</h3>")
        models: dict[str, str] = {}
        for where, m in f["manifests"].items():
            for role, mid in (m or {}).get("models", {}).items():
                models[f"{where}: {role}"] = mid
        if models:
            sec.append(_table(["role", "model"], [[k, v] for k, v in models.items()], left=2))
        rows = []
        walls = []
        for where, u in f["usage"].items():
            for stage, per in (u or {}).get("stages", {}).items():
                for model, c in per.items():
                    rows.append(
                        [
                            where,
                            stage,
                            model,
                            c["calls"],
                            c["prompt_tokens"],
                            c["completion_tokens"],
                            c["cache_hits"],
                            c["retries"],
                            c["failures"],
                            round(c["latency_s"], 1),
                        ]
                    )
            for stage, w in (u or {}).get("stage_wall_s", {}).items():
                walls.append([where, stage, round(w, 2)])
        if rows:
            sec.append(
                "<h3>Usage per stage and model</h3>"
                + _table(
                    [
                        "run",
                        "stage",
                        "model",
                        "calls",
                        "prompt tok",
                        "completion tok",
                        "cache hits",
                        "retries",
                        "failures",
                        "latency s",
                    ],
                    rows,
                    left=3,
                )
            )
        if walls:
            sec.append("<h3>Wall time per stage</h3>" + _table(["run", "stage", "seconds"], walls, left=2))
        cfg = (f["pipeline"] or {}).get("config") or next((m.get("config") for m in f["manifests"].values() if m), None)
        if cfg:
            sec.append(
                "<details><summary>config</summary><pre>"
                + esc(orjson.dumps(cfg, option=orjson.OPT_INDENT_2).decode())
                + "</pre></details>"
            )
    sec.append("</section>")
    parts.append("".join(sec))
    # -- strategy map --------------------------------------------------------------------------
    libs = [f["library"] for f in found if f["library"]]
    if libs:
        lib = libs[0]
        top = [
            [s["id"], s["size"], s["text"], (s.get("examples") or [{}])[0].get("instruction", "")[:120]]
            for s in lib["strategies"][:15]
        ]
        parts.append(
            f'<section id="strategies"><h2>Strategy map</h2><p>{esc(len(lib["strategies"]))} strategies '
            f"from {esc(lib['counts'].get('extracted'))} extracted turns; embedder {esc(lib['embedder'])}, "
            f"{esc(lib['method'])} clustering at {esc(lib['threshold'])}.</p>{strategy_map(lib)}"
            f"<h3>Largest strategies</h3>{_table(['id', 'size', 'strategy', 'example source turn'], top, 4)}"
            "</section>"
        )
    # -- metrics -------------------------------------------------------------------------------
    if sims:
        from .score.registry import report_metrics

        registered = {m.name: m for m in report_metrics()}
        keys = list(registered)
        present = [k for k in keys if any((s["summary"] or {}).get(k) is not None for s in sims)]
        rows = [
            [f"{k} {registered[k].arrow}".strip()] + [(s["summary"] or {}).get(k, "") for s in sims] for k in present
        ]
        sec = ['<section id="metrics"><h2>Metrics</h2>']
        if rows:
            sec.append(_table(["metric", *[s["name"] for s in sims]], rows))
        for s in sims:
            per = list(s["scores"].values())
            charts = [
                histogram([p.get(k) for p in per], f"{k}")
                for k in ("user_turns", "mtld", "distinct_1", "follow_up_rate")
            ]
            reasons = Counter((c.get("meta") or {}).get("termination_reason") or "none" for c in s["conversations"])
            turns = Counter(sum(1 for m in c["messages"] if m["role"] == "user") for c in s["conversations"])
            charts.append(bar_chart(dict(reasons.most_common()), title="termination reasons"))
            charts.append(bar_chart({f"{k} turns": v for k, v in sorted(turns.items())}, title="user turns"))
            sec.append(f'<h3>{esc(s["name"])}</h3><div class="grid">{"".join(c for c in charts if c)}</div>')
        sec.append("</section>")
        parts.append("".join(sec))
    # -- comparison on the same seeds ------------------------------------------------------------
    if len(sims) > 1:
        by_seed: dict[str, dict[str, dict[str, Any]]] = {}
        for s in sims:
            for c in s["conversations"]:
                sid = (c.get("meta") or {}).get("seed_id")
                if sid:
                    by_seed.setdefault(sid, {})[s["name"]] = c
        shared = [sid for sid, d in by_seed.items() if len(d) == len(sims)][:10]
        if shared:
            rows = []
            for sid in shared:
                d = by_seed[sid]
                seed_q = next((m["content"] for m in next(iter(d.values()))["messages"] if m["role"] == "user"), "")
                row = [seed_q[:100]]
                for s in sims:
                    users = [m["content"] for m in d[s["name"]]["messages"] if m["role"] == "user"]
                    row.append(
                        (users[1][:160] if len(users) > 1 else "(no follow-up)")
                        + f"  [{(d[s['name']].get('meta') or {}).get('termination_reason')}]"
                    )
                rows.append(row)
            parts.append(
                '<section id="compare"><h2>Simulators side by side on the same seeds</h2>'
                "<p>The first follow-up each simulator wrote for the same seed question.</p>"
                + _table(["seed", *[s["name"] for s in sims]], rows, left=len(sims) + 1)
                + "</section>"
            )
    # -- dialogue browser ---------------------------------------------------------------------------
    sec = [
        '<section id="dialogues"><h2>Dialogues</h2><p><span id="dialogue-count">?</span> dialogues shown '
        f"(at most {MAX_DIALOGUES} per run).</p>"
    ]
    for s in sims:
        sec.append(f"<h3>{esc(s['name'])} ({len(s['conversations'])} conversations)</h3>")
        sec.extend(_dialogue(c, s["scores"]) for c in s["conversations"][:MAX_DIALOGUES])
    sec.append("</section>")
    parts.append("".join(sec))
    parts.append("</main>")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
        'content="width=device-width, initial-scale=1"><title>dialforge report</title>'
        f"<style>{CSS}</style><script>{SCRIPT}</script></head><body>{''.join(parts)}</body></html>"
    )


def write_report(roots: Sequence[str | Path], out: str | Path) -> Path:
    out = Path(out)
    atomic_write_bytes(out, render([Path(r) for r in roots]).encode("utf-8"))
    return out
