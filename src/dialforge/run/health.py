"""Health checks: a run that produced nothing useful says so.

Each check returns warning lines; the executor logs them, stores them in the manifest and the
CLI prints them (`--strict` turns any warning into exit 3). The report shows the same lines.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

import orjson

# termination reasons that mean a conversation did not end the way it should
FAILURE_REASONS = frozenset({"error", "rejections", "role_flip", "repetition", "empty_turn", "context_budget"})
MAJORITY = 0.5


def _meta(r: dict[str, Any]) -> dict[str, Any]:
    m = r.get("meta")
    return m if isinstance(m, dict) else {}


def conversation_warnings(label: str, records: Iterable[dict[str, Any]]) -> list[str]:
    """Most conversations ending on one failure reason, or most with no follow-up turn (one
    pass: `records` may be streamed from disk)."""
    reasons: Counter[str] = Counter()
    no_follow_up = 0
    for r in records:
        meta = _meta(r)
        if "termination_reason" in meta:
            reasons[meta["termination_reason"]] += 1
            no_follow_up += _user_turns(r) <= 1
    n = sum(reasons.values())
    if not n:
        return []
    out = []
    for reason, k in reasons.most_common():
        if reason in FAILURE_REASONS and k / n >= MAJORITY:
            out.append(f"{label}: {k}/{n} conversations ended on {reason}")
    if no_follow_up / n >= MAJORITY:
        out.append(f"{label}: {no_follow_up}/{n} conversations have no follow-up user turn")
    return out


def _user_turns(r: dict[str, Any]) -> int:
    msgs = r.get("messages")
    if isinstance(msgs, list):
        return sum(1 for m in msgs if isinstance(m, dict) and m.get("role") == "user")
    return int(_meta(r).get("user_turns") or 0)


def stage_warnings(name: str, records: Collection[dict[str, Any]], summary: dict[str, Any]) -> list[str]:
    """A stage with no records, failed jobs (`summary["failed"]`), and the conversation checks."""
    out = []
    jobs = summary.get("jobs", len(records))
    if jobs and not len(records):
        out.append(f"{name}: produced no records")
    if summary.get("failed"):
        out.append(f"{name}: {summary['failed']}/{jobs} jobs failed (see run.log)")
    out += [w for w in conversation_warnings(name, records) if not w.endswith("ended on error")]
    return out


def kept_warning(label: str, n_in: int, n_out: int, path: str | None = None) -> list[str]:
    """A filter, dedup or export that keeps nothing of a non-empty input."""
    if n_in and not n_out:
        where = f" ({path})" if path else ""
        return [f"{label}: kept 0 of {n_in}{where}"]
    return []


def run_warnings(run_dir: str | Path) -> list[str]:
    """Every stage's warnings stored in a run directory's manifest, in stage order (for
    commands that return an artifact rather than a summary, e.g. `induce`)."""
    path = Path(run_dir) / "manifest.json"
    try:
        stages = orjson.loads(path.read_bytes()).get("stages") or {}
    except (OSError, orjson.JSONDecodeError, AttributeError):
        return []
    return [w for info in stages.values() if isinstance(info, dict) for w in info.get("warnings") or []]
