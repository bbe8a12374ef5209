"""The Self-Talk subgoal tracker: ROUGE-L (F) >= 0.33 between agent utterances and the
reference utterances of the workflow's next nodes, following graph edges only."""

from __future__ import annotations

from typing import Any

from .model import Workflow

THRESHOLD = 0.33


class RougeL:
    def __init__(self) -> None:
        from rouge_score import rouge_scorer

        self._s = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)

    def __call__(self, a: str, b: str) -> float:
        return float(self._s.score(b, a)["rougeL"].fmeasure)


_ROUGE: RougeL | None = None


def rouge_l(a: str, b: str) -> float:
    global _ROUGE
    if _ROUGE is None:
        _ROUGE = RougeL()
    return _ROUGE(a, b)


def track(
    wf: Workflow, agent_utterances: list[str], threshold: float = THRESHOLD, order: str = "graph"
) -> dict[str, Any]:
    """Absolute depth (nodes reached, start included), relative depth (/ the workflow's
    longest path) and success (an ending was reached), with the path taken.

    Before the first match the start node or one of its children may match: a greeting is
    often skipped when the user opens (as in STAR, where the user speaks first).
    `order="any"` is a lenient variant (not the paper's): every node may match once, in any
    order; depth counts distinct nodes matched.
    """
    if order == "any":
        seen: list[str] = []
        for u in agent_utterances:
            candidates = [n for n in wf.nodes if n not in seen]
            if not candidates:
                break
            score, best = max((rouge_l(u, wf.nodes[c].say), c) for c in candidates)
            if score >= threshold:
                seen.append(best)
        depth = len(seen)
        return {
            "depth": depth,
            "relative_depth": round(min(1.0, depth / wf.max_depth), 4),
            "success": any(wf.nodes[n].ending for n in seen),
            "path": seen,
        }
    current: str | None = None
    path: list[str] = []
    for u in agent_utterances:
        candidates = [wf.start, *wf.children(wf.start)] if current is None else wf.children(current)
        if not candidates:
            break
        scored = [(rouge_l(u, wf.nodes[c].say), c) for c in candidates]
        score, best = max(scored)
        if score >= threshold:
            current = best
            path.append(best)
    success = bool(path) and wf.nodes[path[-1]].ending
    depth = len(path)
    return {"depth": depth, "relative_depth": round(depth / wf.max_depth, 4), "success": success, "path": path}
