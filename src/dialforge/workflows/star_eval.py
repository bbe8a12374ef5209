"""Check the subgoal tracker on real human dialogues: STAR's wizard turns scored against
their task's imported workflow, grouped by STAR's own CompletionLevel and Happy flags."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..io._records import iter_records
from .importers import import_star
from .tracker import DEFAULT_ORDER, THRESHOLD, track


def wizard_utterances(dialogue: dict[str, Any]) -> list[str]:
    return [
        e["Text"]
        for e in dialogue.get("Events", [])
        if e.get("Agent") == "Wizard" and e.get("Action") in ("utter", "pick_suggestion") and e.get("Text")
    ]


def evaluate_star(
    dialogues: str | Path, tasks: str | Path, threshold: float = THRESHOLD, order: str = DEFAULT_ORDER
) -> dict[str, Any]:
    workflows, failed = import_star(tasks)
    by_task = {w.name: w for w in workflows}
    rows = []
    for d, _, _ in iter_records(Path(dialogues)):
        if isinstance(d, Exception):
            raise d
        sc = d["Scenario"]
        caps = [c["Task"] for c in sc["WizardCapabilities"]]
        wfs = [by_task[t] for t in caps if t in by_task]
        if not wfs:
            continue
        utts = wizard_utterances(d)
        # multi-task dialogues: the tracker runs per task; the best-completed task counts
        results = [track(w, utts, threshold, order) for w in wfs]
        best = max(results, key=lambda r: (r["success"], r["relative_depth"]))
        rows.append(
            {
                "id": d["DialogueID"],
                "tasks": caps,
                "completion": d.get("CompletionLevel"),
                "happy": sc.get("Happy"),
                "multitask": sc.get("MultiTask"),
                **best,
            }
        )

    def agg(group: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "dialogues": len(group),
            "depth_mean": round(statistics.fmean(r["depth"] for r in group), 3),
            "relative_depth_mean": round(statistics.fmean(r["relative_depth"] for r in group), 3),
            "success_rate": round(sum(r["success"] for r in group) / len(group), 3),
        }

    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[f"completion={r['completion']}"].append(r)
        groups[f"happy={r['happy']}"].append(r)
        groups[f"multitask={r['multitask']}"].append(r)
    return {
        "threshold": threshold,
        "order": order,
        "dialogues": len(rows),
        "import_failures": failed,
        "all": agg(rows) if rows else {},
        "groups": {k: agg(v) for k, v in sorted(groups.items())},
        "rows": rows,
    }
