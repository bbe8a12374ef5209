"""Small inline SVG charts. Widths follow the labels (an estimate of 7 px per character at
11 px), so no label or value is clipped; long labels are cut with an ellipsis and the full
text is in the tooltip."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .format import cut, fmt_axis, fmt_number, nice_ticks
from .tables import esc

PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7"]
CHAR_PX = 7
LABEL_MAX = 28


def _text_px(s: str) -> int:
    return CHAR_PX * len(s) + 4


def bar_chart(counts: dict[str, float], title: str, digits: int = 0) -> str:
    """Horizontal bars, one per key, with the value after each bar."""
    if not counts:
        return ""
    labels = {k: cut(k, LABEL_MAX) for k in counts}
    values = {k: fmt_number(v, digits) for k, v in counts.items()}
    left = max(_text_px(s) for s in labels.values()) + 6
    bar_w = 220
    width = left + bar_w + max(_text_px(s) for s in values.values()) + 8
    width = max(width, _text_px(title))
    top = max(counts.values()) or 1
    rows = []
    for i, (k, v) in enumerate(counts.items()):
        w = bar_w * max(v, 0) / top
        y = 22 + 22 * i
        rows.append(
            f'<text x="{left - 6}" y="{y + 12}" text-anchor="end">{esc(labels[k])}<title>{esc(k)}</title></text>'
            f'<rect x="{left}" y="{y}" width="{w:.1f}" height="16" fill="{PALETTE[i % len(PALETTE)]}">'
            f"<title>{esc(k)}: {esc(values[k])}</title></rect>"
            f'<text x="{left + w + 4:.1f}" y="{y + 12}">{esc(values[k])}</text>'
        )
    h = 22 * len(counts) + 28
    return (
        f'<svg class="chart" width="{width}" height="{h}" role="img" aria-label="{esc(title)}">'
        f'<text x="0" y="13" class="title">{esc(title)}</text>{"".join(rows)}</svg>'
    )


def histogram(values: list[Any], title: str, bins: int = 12, width: int = 340, height: int = 180) -> str:
    """Counts per bin with both axes ticked (round values) and the sample size in the title."""
    vals = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)]
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    ticks = nice_ticks(lo, hi, 5)
    lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])
    counts, edges = np.histogram(vals, bins=bins, range=(lo, hi))
    top = int(counts.max()) or 1
    left, bottom, plot_top = 40, height - 34, 22
    pw, ph = width - left - 12, bottom - plot_top
    bw = pw / bins
    bars = "".join(
        f'<rect x="{left + i * bw + 1:.1f}" y="{bottom - ph * c / top:.1f}" width="{bw - 2:.1f}" '
        f'height="{ph * c / top:.1f}" fill="#4e79a7"><title>{esc(fmt_axis(edges[i]))} to '
        f"{esc(fmt_axis(edges[i + 1]))}: {c}</title></rect>"
        for i, c in enumerate(counts)
    )
    xt = "".join(
        f'<line x1="{left + pw * (t - lo) / (hi - lo):.1f}" x2="{left + pw * (t - lo) / (hi - lo):.1f}" '
        f'y1="{bottom}" y2="{bottom + 4}" stroke="#666"/><text x="{left + pw * (t - lo) / (hi - lo):.1f}" '
        f'y="{bottom + 15}" text-anchor="middle">{esc(fmt_axis(t))}</text>'
        for t in ticks
    )
    yt = "".join(
        f'<text x="{left - 4}" y="{bottom - ph * t / top + 4:.1f}" text-anchor="end">{esc(fmt_axis(t))}</text>'
        for t in nice_ticks(0, top, 3)
        if t == int(t)
    )
    return (
        f'<svg class="chart" width="{width}" height="{height}" role="img" aria-label="{esc(title)}">'
        f'<text x="0" y="13" class="title">{esc(title)} (n={len(vals):,})</text>{bars}'
        f'<line x1="{left}" x2="{left + pw}" y1="{bottom}" y2="{bottom}" stroke="#666"/>{xt}{yt}'
        f'<text x="{left + pw / 2:.0f}" y="{height - 3}" text-anchor="middle" class="axis">{esc(title)}</text>'
        f'<text x="10" y="{plot_top + ph / 2:.0f}" transform="rotate(-90 10 {plot_top + ph / 2:.0f})" '
        f'text-anchor="middle" class="axis">conversations</text></svg>'
    )


def _project(strategies: list[dict[str, Any]]) -> tuple[np.ndarray, list[float]]:
    """PCA of the centroids to 2-D and the share of variance each axis explains."""
    c = np.asarray([s["centroid"] for s in strategies], dtype=np.float64)
    c = c - c.mean(axis=0)
    if len(c) < 2 or not np.any(c):
        return np.zeros((len(c), 2)), [0.0, 0.0]
    _, sv, vt = np.linalg.svd(c, full_matrices=False)
    xy = c @ vt[:2].T
    if xy.shape[1] < 2:
        xy = np.hstack([xy, np.zeros((len(xy), 1))])
    var = sv**2
    share = [float(v / var.sum()) for v in var[:2]] + [0.0]
    return xy, share[:2]


def strategy_map(strategies: list[dict[str, Any]], used: set[str], width: int = 760, height: int = 480) -> str:
    """The strategies on their first two principal components: area ~ size, colour = used by a
    simulator on this page or not; axes ticked, a legend, each point clickable (the script
    filters the dialogues and the strategy table by it)."""
    pts = [s for s in strategies if isinstance(s.get("centroid"), list) and s["centroid"]]
    if not pts:
        return '<p class="muted">the library holds no strategy centroids to place on a map</p>'
    xy, share = _project(pts)
    left, right, top, bottom = 56, 170, 14, 44
    pw, ph = width - left - right, height - top - bottom
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    biggest = max(int(s.get("size") or 1) for s in pts)
    dots = []
    for (x, y), s in sorted(zip(xy, pts, strict=True), key=lambda p: -int(p[1].get("size") or 0)):
        r = 3 + 13 * math.sqrt(max(int(s.get("size") or 1), 1) / biggest)
        cx, cy = left + pw * (x - lo[0]) / span[0], top + ph * (1 - (y - lo[1]) / span[1])
        colour = "#e15759" if str(s.get("id")) in used else "#9aa5b1"
        tip = f"{cut(s.get('text'), 160)} (size {s.get('size')})"
        tip += "".join(f"\n• {cut(e.get('instruction'), 140)}" for e in (s.get("examples") or [])[:3])
        dots.append(
            f'<circle class="strategy" data-sid="{esc(s.get("id"))}" cx="{cx:.1f}" cy="{cy:.1f}" r="{r:.1f}" '
            f'fill="{colour}" fill-opacity="0.6" stroke="#333" stroke-width="0.6"><title>{esc(tip)}</title></circle>'
        )
    axes = _map_axes(left, top, pw, ph, lo, hi, share)
    legend = _map_legend(left + pw + 16, top + 4, biggest)
    return (
        f'<svg id="strategy-map" class="chart" width="{width}" height="{height}" role="img" '
        f'aria-label="strategy map">{axes}{"".join(dots)}{legend}</svg>'
    )


def _map_axes(left: float, top: float, pw: float, ph: float, lo: np.ndarray, hi: np.ndarray, share: list[float]) -> str:
    out = [f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#bbb"/>']
    for axis in (0, 1):
        a, b = float(lo[axis]), float(hi[axis])
        if b <= a:
            continue
        for t in nice_ticks(a, b, 5):
            f = (t - a) / (b - a)
            if axis == 0:
                x = left + pw * f
                out.append(
                    f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top + ph}" y2="{top + ph + 4}" stroke="#666"/>'
                    f'<text x="{x:.1f}" y="{top + ph + 15}" text-anchor="middle">{esc(fmt_axis(t))}</text>'
                )
            else:
                y = top + ph * (1 - f)
                out.append(
                    f'<line x1="{left - 4}" x2="{left}" y1="{y:.1f}" y2="{y:.1f}" stroke="#666"/>'
                    f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{esc(fmt_axis(t))}</text>'
                )
    out.append(
        f'<text x="{left + pw / 2:.0f}" y="{top + ph + 34}" text-anchor="middle" class="axis">'
        f"principal component 1 ({share[0] * 100:.0f}% of variance)</text>"
        f'<text x="14" y="{top + ph / 2:.0f}" transform="rotate(-90 14 {top + ph / 2:.0f})" text-anchor="middle" '
        f'class="axis">principal component 2 ({share[1] * 100:.0f}% of variance)</text>'
    )
    return "".join(out)


def _map_legend(x: float, y: float, biggest: int) -> str:
    out = [f'<text x="{x}" y="{y + 10}" class="title">legend</text>']
    for i, (colour, what) in enumerate((("#e15759", "used in this run"), ("#9aa5b1", "not used"))):
        yy = y + 30 + 20 * i
        out.append(
            f'<circle cx="{x + 8}" cy="{yy}" r="6" fill="{colour}" fill-opacity="0.6" stroke="#333" '
            'stroke-width="0.6"/>'
            f'<text x="{x + 20}" y="{yy + 4}">{what}</text>'
        )
    sizes = sorted({1, max(biggest // 2, 1), biggest})
    yy = y + 84
    out.append(f'<text x="{x}" y="{yy}">size (source turns)</text>')
    for s in sizes:
        r = 3 + 13 * math.sqrt(s / biggest)
        yy += 2 * r + 8
        out.append(
            f'<circle cx="{x + 18}" cy="{yy - r:.1f}" r="{r:.1f}" fill="none" stroke="#333"/>'
            f'<text x="{x + 40}" y="{yy - r + 4:.1f}">{s:,}</text>'
        )
    out.append(f'<text x="{x}" y="{yy + 18:.0f}" class="muted">click a point to filter</text>')
    return "".join(out)
