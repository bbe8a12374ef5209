"""The Self-Talk subgoal tracker: ROUGE-L (F) >= 0.33 between agent utterances and the
reference utterances of the workflow's next nodes, following graph edges only (a tool
step may be skipped: human agents call APIs silently)."""

from __future__ import annotations

import functools
import re
from typing import Any

from rapidfuzz.distance import LCSseq

from .model import Workflow

THRESHOLD = 0.33


_NON_ALNUM = re.compile(r"[^a-z0-9]+")


@functools.lru_cache(maxsize=65536)
def rouge_tokens(text: str) -> tuple[str, ...]:
    """rouge-score's default tokenizer (no stemmer): lowercase, non-alphanumerics to spaces."""
    return tuple(t for t in _NON_ALNUM.sub(" ", text.lower()).split() if t)


def rouge_l(a: str, b: str) -> float:
    """ROUGE-L F1 of `a` (prediction) against `b` (target), equal to rouge-score's
    `RougeScorer(["rougeL"]).score(b, a)["rougeL"].fmeasure` (tested on STAR turns) and much
    faster: rapidfuzz's LCS over token sequences, reference utterances tokenised once."""
    pa, pb = rouge_tokens(a), rouge_tokens(b)
    if not pa or not pb:
        return 0.0
    lcs = LCSseq.similarity(pa, pb)
    precision, recall = lcs / len(pa), lcs / len(pb)
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


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
        candidates = [wf.start, *wf.next_said(wf.start)] if current is None else wf.next_said(current)
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
