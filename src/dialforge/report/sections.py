"""The page's sections, each from the collected runs (no file access here)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson

from ..score.registry import Metric, get, report_metrics
from .charts import bar_chart, histogram
from .collect import Run, Sim, is_tiny
from .format import DASH, ELLIPSIS, cut, fmt_int, fmt_metric, fmt_seconds, fmt_share
from .tables import Raw, esc, para, section, table

DIRECTION = {"higher": "higher is better ↑", "lower": "lower is better ↓", "n/a": DASH}
# what the registry's one-line definitions leave a first-time reader asking
NOTES = {
    "mtld": "MTLD counts words per stretch of text whose type-token ratio stays above 0.72; text that "
    "never falls to 0.72 (short, or random as the tiny model's) scores its whole length, so values "
    "in the hundreds or thousands mean 'no repetition measurable', not 'excellent'.",
    "embedding_vendi": "The effective number of distinct user turns in the sample; it grows with the sample size.",
    "self_bleu": "Computed on a sample of user turns (scores_summary.json config.self_bleu_sample).",
}
HISTOGRAMS = ("user_turns", "mtld", "distinct_1", "follow_up_rate")
USAGE_FIELDS = ("calls", "prompt_tokens", "completion_tokens", "cache_hits", "retries", "failures")


def sims_of(runs: list[Run]) -> list[Sim]:
    return [s for r in runs for s in r.sims]


def model_short(model: Any) -> str:
    """A model id as shown: the tiny model as `dialforge-tiny`, a long local path by its last part."""
    if not model:
        return DASH
    m = str(model)
    if is_tiny(m):
        return "dialforge-tiny"
    if ("/" in m or "\\" in m) and len(m) > 40:
        return ELLIPSIS + "/" + m.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return m


def model_name(model: Any) -> Raw | str:
    """`model_short` with the full id in the tooltip."""
    short = model_short(model)
    return Raw(f'<span title="{esc(model)}">{esc(short)}</span>') if short != str(model) and model else short


def notices(runs: list[Run]) -> str:
    """The tiny-model notice and every warning, first thing on the page."""
    out = []
    if any(r.tiny for r in runs):
        out.append(
            '<div class="notice" id="tiny-notice"><b>Made by the offline tiny model.</b> '
            "<code>dialforge-tiny</code> (random weights) wrote the text of this run: it is not meaningful. "
            "The shapes, counts and code paths are real; run with a real model for data you can use.</div>"
        )
    warnings = [w for r in runs for w in r.warnings]
    if warnings:
        items = "".join(f"<li>{esc(cut(w, 400))}</li>" for w in dict.fromkeys(warnings))
        out.append(
            f'<div class="warnings" id="warnings"><b>{len(warnings)} warning{"s" if len(warnings) != 1 else ""}'
            f"</b><ul>{items}</ul></div>"
        )
    caveats = list(dict.fromkeys(c for r in runs for c in r.caveats))
    if caveats:
        items = "".join(f"<li>{esc(cut(c, 400))}</li>" for c in caveats)
        out.append(
            f'<div class="caveats" id="caveats"><b>Realism card caveats</b> (how far to trust the cards; '
            f"not health warnings)<ul>{items}</ul></div>"
        )
    return "".join(out)


def overview(runs: list[Run]) -> str:
    rows = []
    for r in runs:
        for s in r.sims:
            m = s.manifest.get("models") or {}
            mode = (s.manifest.get("config") or {}).get("mode") or s.manifest.get("command") or DASH
            folder = str(s.dir.relative_to(r.root)) if s.dir != r.root else "."
            rows.append(
                [s.label, mode, fmt_int(len(s.conversations)), model_name(m.get("user")),
                 model_name(m.get("assistant")), f"{r.root.name}/{folder}"]
            )  # fmt: skip
    parts = [table(["simulator", "mode", "conversations", "user model", "assistant model", "folder"], rows, left=6)]
    for r in runs:
        if r.library:
            lib = r.library
            parts.append(
                para(
                    f"{r.root.name}: strategy library with {len(lib.get('strategies') or []):,} strategies from "
                    f"{fmt_int((lib.get('counts') or {}).get('extracted'))} extracted user turns; embedder "
                    f"{lib.get('embedder', DASH)}, {lib.get('method', DASH)} clustering at cosine "
                    f"{lib.get('threshold', DASH)}; abstraction model {model_short(lib.get('abstraction_model'))}."
                )
            )
    return section("overview", "Run overview", *parts)


def _funnel_rows(s: Sim) -> list[list[Any]]:
    f = s.funnel
    g = f.generated
    rows: list[list[Any]] = [["generated", fmt_int(g), fmt_share(g, g), "conversations.jsonl"]]
    for reason, n in f.reasons.items():
        rows.append([Raw(f'<span class="indent">ended: {esc(reason)}</span>'), fmt_int(n), fmt_share(n, g), ""])
    if f.failed is not None:
        rows.append(["failed (error records)", fmt_int(f.failed), fmt_share(f.failed, g), ""])
    rows.append(["kept by the filter", fmt_int(f.kept_after_filter), fmt_share(f.kept_after_filter, g), ""])
    removed = f" ({fmt_int(f.dedup_removed)} removed)" if f.dedup_removed is not None else ""
    rows.append([f"after dedup{removed}", fmt_int(f.kept_after_dedup), fmt_share(f.kept_after_dedup, g), ""])
    rows.append(["final", fmt_int(f.kept_after_dedup) if f.final else DASH, "", f.final or DASH])
    for fmt, path in f.exports.items():
        rows.append([f"exported: {fmt}", "", "", path])
    return rows


def funnel(runs: list[Run]) -> str:
    parts = []
    for r in runs:
        for s in r.sims:
            parts.append(f'<div class="funnel"><h3>{esc(s.label)}</h3>')
            parts.append(table(["step", "conversations", "of generated", "file"], _funnel_rows(s), text=(3,)))
            parts.append("</div>")
    if not parts:
        return ""
    note = para("Paths are relative to the run directory. '—': the run did not record this step.", "muted")
    return section("funnel", "From generated to exported", note, '<div class="grid">', *parts, "</div>")


def _metric_cell(m: Metric) -> Raw:
    note = NOTES.get(m.name)
    extra = f'<div class="muted small">{esc(note)}</div>' if note else ""
    return Raw(f"<b>{esc(m.name)}</b><div class=small>{esc(m.description)}</div>{extra}")


def metrics_section(runs: list[Run]) -> str:
    sims = sims_of(runs)
    if not sims:
        return ""
    has_library = any(r.library for r in runs)
    rows = []
    for m in report_metrics():
        vals = [s.summary.get(m.name) for s in sims]
        if any(v is not None for v in vals) or (has_library and m.name == "strategy_coverage"):
            rows.append([_metric_cell(m), DIRECTION[m.direction], *[fmt_metric(v, m) for v in vals]])
    parts = [
        para(
            "Dataset metrics from scores_summary.json; '—': does not apply to this run (e.g. strategy metrics "
            "for a simulator that uses no strategy library)."
        ),  # fmt: skip
        table(["metric", "better", *[s.label for s in sims]], rows, left=2, cls="metrics"),
    ]
    parts += [f'<h3>{esc(s.label)}</h3><div class="grid">{_charts(s)}</div>' for s in sims]
    return section("metrics", "Metrics", *parts)


def _user_turns(conv: dict[str, Any]) -> int:
    return sum(1 for m in conv["messages"] if isinstance(m, dict) and m.get("role") == "user")


def _charts(s: Sim) -> str:
    per = list(s.scores.values())
    charts = [histogram([p.get(k) for p in per], k) for k in HISTOGRAMS]
    turns = Counter(_user_turns(c) for c in s.conversations)
    charts.append(bar_chart({f"{k} turns": float(v) for k, v in sorted(turns.items())}, "user turns per conversation"))
    charts.append(bar_chart({k: float(v) for k, v in s.funnel.reasons.items()}, "termination reasons"))
    return "".join(c for c in charts if c)


def _usage_totals(runs: list[Run]) -> tuple[dict[str, float], dict[str, dict[str, float]], list[list[Any]]]:
    total: Counter[str] = Counter()
    per_role: dict[str, Counter[str]] = {}
    detail = []
    for r in runs:
        for u in r.usage:
            for stage, per_model in u.stages.items():
                role = stage.rsplit(".", 1)[-1]
                for model, c in per_model.items():
                    counts = {k: float(c.get(k) or 0) for k in (*USAGE_FIELDS, "latency_s")}
                    total.update(counts)
                    per_role.setdefault(role, Counter()).update(counts)
                    where = u.where if u.where != "." else r.root.name
                    detail.append([where, stage, model, *[fmt_int(counts[k]) for k in USAGE_FIELDS]])
    return dict(total), {k: dict(v) for k, v in per_role.items()}, detail


def usage(runs: list[Run]) -> str:
    total, per_role, detail = _usage_totals(runs)
    if not detail:
        return section("usage", "Usage", para("No usage.json in these run directories.", "muted"))
    heads = ["calls", "prompt tokens", "completion tokens", "cache hits", "retries", "failures"]
    rows = [["all roles", *[fmt_int(total.get(k)) for k in USAGE_FIELDS]]]
    rows += [[role, *[fmt_int(c.get(k)) for k in USAGE_FIELDS]] for role, c in sorted(per_role.items())]
    walls = [
        [u.where if u.where != "." else r.root.name, stage, fmt_seconds(w)]
        for r in runs
        for u in r.usage
        for stage, w in u.wall_s.items()
    ]
    return section(
        "usage",
        "Usage",
        para("Model calls and tokens, overall and per role (the part of a stage that called the model)."),
        table(["role", *heads], rows, cls="usage-totals"),
        "<details><summary>per stage and model</summary>",
        table(["run", "stage", "model", *heads], detail, left=3),
        "</details>",
        f"<details><summary>wall time per stage</summary>{table(['run', 'stage', 'time'], walls, left=2)}</details>"
        if walls
        else "",
    )


def config_section(runs: list[Run]) -> str:
    parts = []
    for r in runs:
        if r.config:
            text = orjson.dumps(r.config, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()
            parts.append(f"<details><summary>{esc(r.root.name)}: config</summary><pre>{esc(cut_lines(text))}</pre>"
                         "</details>")  # fmt: skip
    return section("config", "Configuration", *parts) if parts else ""


def cut_lines(text: str, limit: int = 400) -> str:
    from .format import clean

    lines = clean(text).splitlines()
    return "\n".join(lines[:limit] + ([f"… ({len(lines) - limit} more lines)"] if len(lines) > limit else []))


def metric(name: str) -> Metric | None:
    return get(name, "conversation")


def _agent_summary(r: Run) -> dict[str, Any] | None:
    """An agentic run's summary.json (per task: success on the final database state, pass^k,
    call validity, errors by side), or None for other runs."""
    p = r.root / "summary.json"
    if not p.exists():
        return None
    try:
        data = orjson.loads(p.read_bytes())
    except orjson.JSONDecodeError:
        return None
    tasks = data.get("tasks", data) if isinstance(data, dict) else None
    if not isinstance(tasks, dict) or not isinstance(tasks.get("all"), dict) or "success" not in tasks["all"]:
        return None
    return tasks


def _rate_cell(v: Any) -> str:
    return f"{v:.2f}" if isinstance(v, int | float) and not isinstance(v, bool) else DASH


def _agent_row(task: str, row: dict[str, Any], ks: list[str]) -> list[str]:
    failures = ", ".join(f"{k} {v}" for k, v in (row.get("failures") or {}).items()) or DASH
    return [task, fmt_int(row.get("conversations") or 0), _rate_cell(row.get("success")),
            _rate_cell(row.get("partial_credit")), *(_rate_cell(row.get(k)) for k in ks),
            fmt_int(row.get("tool_calls") or 0), _rate_cell(row.get("calls_schema_valid")),
            fmt_int(row.get("tool_errors") or 0), _rate_cell(row.get("simulator_error_rate")), failures]  # fmt: skip


def agent_section(runs: list[Run]) -> str:
    """Agentic self-talk: per task, success checked on the final database state, pass^k over
    the samples of one goal, tool-call validity and tool errors, and failures put down to the
    agent or the simulated user."""
    parts = []
    for r in runs:
        tasks = _agent_summary(r)
        if tasks is None:
            continue
        ks = sorted({k for row in tasks.values() if isinstance(row, dict) for k in row if k.startswith("pass^")})
        headers = ["task", "conversations", "success", "partial credit", *ks, "tool calls", "schema-valid"]
        headers += ["tool errors", "simulator errors", "failures by side"]
        rows = [_agent_row(task, row, ks) for task, row in tasks.items() if isinstance(row, dict)]
        parts.append(f"<h3>{esc(r.root.name)}</h3>" + table(headers, rows, text=(len(headers) - 1,)))
    if not parts:
        return ""
    note = para(
        "Success is checked on each conversation's final database state (partial credit per required call); "
        "pass^k: the chance that all k samples of one goal succeed. Failures are put down to the agent, the "
        "simulated user (it leaked, ignored or contradicted its goal, or broke role) or an error.",
        "muted",
    )
    return section("agent", "Agent tasks: success on the final state", note, *parts)
