"""The HTML shell: head, the sections in reading order, the embedded data and our script.
CSS and JS are package data files (`assets/`), inlined so the page works offline."""

from __future__ import annotations

from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

from .._version import __version__
from . import payload
from .charts import strategy_map
from .collect import Run, read_runs
from .compare import ab_section
from .format import fmt_int
from .sections import agent_section, config_section, funnel, metrics_section, notices, overview, sims_of, usage
from .tables import esc, para, section


def asset(name: str) -> str:
    return resources.files("dialforge.report").joinpath("assets", name).read_text(encoding="utf-8")


def strategies_section(runs: list[Run], rows: list[dict[str, object]]) -> str:
    lib = next((r.library for r in runs if r.library), None)
    if not lib:
        return ""
    used = {str(r["id"]) for r in rows if r["used"]}
    return section(
        "strategies",
        "Strategies",
        para(
            f"{len(rows):,} strategies ({len(used):,} used by the simulators on this page). Search and sort the "
            "table; click a row or a point on the map to show the dialogues that used that strategy."
        ),
        strategy_map(lib.get("strategies") or [], used),
        '<div class="controls"><input id="strategy-search" type="search" placeholder="search strategies" '
        'aria-label="search strategies"> <span id="strategy-count" class="muted"></span></div>',
        '<div class="scroll"><table id="strategy-table" class="sortable"><thead></thead><tbody></tbody></table></div>',
    )


def dialogues_section(total: int) -> str:
    return section(
        "dialogues",
        "Dialogues",
        f'<p><span id="match-count">{fmt_int(total)}</span> of {fmt_int(total)} dialogues match. '
        "Click a row to read the dialogue.</p>",
        '<div class="controls" id="dialogue-controls">'
        '<input id="q" type="search" placeholder="search text or id" aria-label="search dialogues">'
        '<select id="sim" aria-label="simulator"><option value="">all simulators</option></select>'
        '<select id="reason" aria-label="termination reason"><option value="">all endings</option></select>'
        '<select id="strategy" aria-label="strategy"><option value="">any strategy</option></select>'
        '<select id="metric" aria-label="score"><option value="">score range: none</option></select>'
        '<input id="min" type="number" step="any" placeholder="min" aria-label="minimum">'
        '<input id="max" type="number" step="any" placeholder="max" aria-label="maximum">'
        '<select id="sort" aria-label="sort by"><option value="">run order</option></select>'
        '<button id="clear" type="button">clear</button></div>',
        '<div class="scroll"><table id="dialogue-table"><thead></thead><tbody></tbody></table></div>',
        '<p><button id="more" type="button" hidden>show more</button></p>',
        '<noscript><p class="warnings">The dialogue browser needs JavaScript.</p></noscript>',
    )


def render_runs(runs: list[Run], roots: list[Path]) -> str:
    data = payload.build(runs)
    meta, text = payload.encode(data)
    sims = sims_of(runs)
    body = [
        f"<header><h1>dialforge report</h1><div>{esc(', '.join(str(r) for r in roots))} &middot; dialforge "
        f"{esc(__version__)} &middot; {esc(datetime.now(timezone.utc).isoformat(timespec='seconds'))}</div>"
        '<nav><a href="#overview">overview</a> <a href="#funnel">funnel</a> <a href="#metrics">metrics</a> '
        '<a href="#usage">usage</a> <a href="#strategies">strategies</a> <a href="#compare">side by side</a> '
        '<a href="#dialogues">dialogues</a></nav></header><main>',
        notices(runs),
        overview(runs),
        funnel(runs),
        agent_section(runs),
        metrics_section(runs),
        usage(runs),
        strategies_section(runs, data.meta["strategies"]),
        ab_section(sims),
        dialogues_section(len(data.meta["convs"])),
        config_section(runs),
        "</main>",
        # the script runs before the parser reaches the (large) texts: rows draw while it reads on
        f'<script type="application/gzip-base64" id="report-data">{meta}</script>',
        f"<script>{asset('report.js')}</script>",
        f'<script type="application/gzip-base64" id="report-text">{text}</script>',
    ]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
        'content="width=device-width, initial-scale=1"><title>dialforge report</title>'
        f"<style>{asset('report.css')}</style></head><body>{''.join(body)}</body></html>"
    )


def render(roots: list[Path]) -> str:
    """The whole page for these run directories."""
    roots = [Path(r) for r in roots]
    return render_runs(read_runs(roots), roots)
