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

from ..termination import FAILURE

# termination reasons that mean a conversation did not end the way it should
FAILURE_REASONS: frozenset[str] = FAILURE
# the rejection kinds of IDEAS quality control (simulate/simulators.py StrategyUser), by prefix
_REJECTION_KINDS = (
    ("judge", "the judge"),
    ("engine stop", "the stop rules"),
    ("unparsable", "unparsable JSON"),
    ("repeats", "repetition"),
    ("strategy", "bad strategy choices"),
)
MAJORITY = 0.5


def _meta(r: dict[str, Any]) -> dict[str, Any]:
    m = r.get("meta")
    return m if isinstance(m, dict) else {}


def conversation_warnings(label: str, records: Iterable[dict[str, Any]]) -> list[str]:
    """Most conversations ending on one failure reason, most with no follow-up turn, any with
    no simulated user turn at all (the seed alone), degenerate turns drawn again, and quality
    control that rejects nearly everything, with its cause (one pass: `records` may be
    streamed from disk)."""
    tally = _Tally()
    for r in records:
        tally.add(r)
    return tally.warnings(label)


class _Tally:
    """What `conversation_warnings` counts over the records of one output."""

    def __init__(self) -> None:
        self.reasons: Counter[str] = Counter()
        self.rejections: Counter[str] = Counter()
        self.redrawn: Counter[str] = Counter()
        self.no_follow_up = self.seed_only = self.simulated = 0
        self.judge: Any = None

    def add(self, r: dict[str, Any]) -> None:
        meta = _meta(r)
        if "termination_reason" not in meta:
            return
        self.reasons[meta["termination_reason"]] += 1
        users = _simulated_user_turns(r)
        self.simulated += users
        self.seed_only += users == 0
        self.no_follow_up += users + _seed_user_turns(r) <= 1
        for m in _messages(r):
            mm: dict[str, Any] = m["meta"] if isinstance(m.get("meta"), dict) else {}
            self.judge = self.judge or mm.get("judge")
            _count_rejections(self.rejections, mm.get("rejections"))
            self.redrawn.update(str(x).split(":", 1)[0] for x in mm.get("redrawn") or [])
        _count_rejections(self.rejections, meta.get("rejections"))
        for key in ("redrawn_user_turns", "redrawn_assistant_turns"):
            self.redrawn.update(str(x).split(":", 1)[0] for x in meta.get(key) or [])

    def warnings(self, label: str) -> list[str]:
        n = sum(self.reasons.values())
        if not n:
            return []
        out = [
            f"{label}: {k}/{n} conversations ended on {reason}"
            for reason, k in self.reasons.most_common()
            if reason in FAILURE_REASONS and k / n >= MAJORITY
        ]
        if self.seed_only:
            out.append(
                f"{label}: {self.seed_only}/{n} conversations have no simulated user turn (the seed alone): "
                "never exported, never counted as simulated"
            )
        if self.no_follow_up / n >= MAJORITY:
            out.append(f"{label}: {self.no_follow_up}/{n} conversations have no follow-up user turn")
        if self.redrawn and sum(self.redrawn.values()) >= max(3, self.simulated // 4):
            kinds = ", ".join(f"{k} {v}" for k, v in self.redrawn.most_common())
            out.append(f"{label}: {sum(self.redrawn.values())} degenerate turns were drawn again ({kinds})")
        return out + self._rejection_warning(label, n)

    def _rejection_warning(self, label: str, n: int) -> list[str]:
        total = sum(self.rejections.values())
        if not total or self.reasons.get("rejections", 0) / n < MAJORITY:
            return []
        kind, k = self.rejections.most_common(1)[0]
        cause = f"{label}: quality control rejected {total} instructions, {k / total:.0%} of them by {kind}"
        if kind == "the judge":
            cause += (
                f"; the judge model {self.judge or '(the assistant model)'} may be too weak to judge: set `judge:` to "
                "a stronger model, or `judge: false`"
            )
        return [cause]


def _count_rejections(into: Counter[str], items: Any) -> None:
    for x in items if isinstance(items, list) else []:
        text = str(x)
        into[next((name for prefix, name in _REJECTION_KINDS if text.startswith(prefix)), "other checks")] += 1


def _messages(r: dict[str, Any]) -> list[dict[str, Any]]:
    msgs = r.get("messages")
    return [m for m in msgs if isinstance(m, dict)] if isinstance(msgs, list) else []


def _simulated_user_turns(r: dict[str, Any]) -> int:
    """User turns the run made (seed turns are real people's words)."""
    msgs = _messages(r)
    if msgs:
        return sum(1 for m in msgs if m.get("role") == "user" and not (m.get("meta") or {}).get("seed"))
    return int(_meta(r).get("user_turns") or 0)


def _seed_user_turns(r: dict[str, Any]) -> int:
    return sum(1 for m in _messages(r) if m.get("role") == "user" and (m.get("meta") or {}).get("seed"))


def stage_warnings(name: str, records: Collection[dict[str, Any]], summary: dict[str, Any]) -> list[str]:
    """A stage with no records, failed jobs (`summary["failed"]`), and the conversation checks."""
    out = []
    jobs = summary.get("jobs", len(records))
    if jobs and not len(records):
        out.append(f"{name}: produced no records")
    if summary.get("failed"):
        out.append(f"{name}: {summary['failed']}/{jobs} jobs failed (see run.log)")
    if summary.get("degenerate"):  # answers too weak to use (a weak model): kept, counted, left out
        n = summary["degenerate"]
        out.append(f"{name}: {n}/{jobs} answers were degenerate and left out (the model is too weak for this step)")
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
