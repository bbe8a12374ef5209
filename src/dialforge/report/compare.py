"""Simulators side by side: realism cards (with the real-vs-real floor) and metric differences
on the same seeds with bootstrap intervals."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..realism.card import RealismCard
from ..score.registry import get
from .ab import differences, pair_key, shared_seeds
from .collect import Sim
from .format import DASH, cut, decimals, fmt_int, fmt_number
from .tables import esc, para, section, table

AB_METRICS = (
    "user_turns",
    "user_tokens",
    "distinct_1",
    "distinct_2",
    "mtld",
    "follow_up_rate",
    "workflow_depth",
    "workflow_success",
    "judge_mean",
)


def _ci(ci: Any) -> str:
    return f" [{fmt_number(ci[0])}, {fmt_number(ci[1])}]" if ci else ""


def _with(value: float | None, reference: float | None) -> str:
    """A figure and its chance level in brackets; "—" when the figure is missing."""
    if value is None:
        return DASH
    return fmt_number(value) + (f" ({fmt_number(reference)})" if reference is not None else "")


def card_rows(card: RealismCard) -> dict[str, str]:
    """The card's figures as the page shows them, keyed by row label."""
    d, mv, ft, ra = card.discriminator, card.mauve, card.first_turns, card.role_adherence
    rows = {
        "overall realism (higher is better)": fmt_number(card.overall.score),
        "discriminator AUC, 95% CI (0.5 is best)": fmt_number(d.auc) + _ci(d.ci95),
        "style-only AUC (0.5 is best)": fmt_number(d.style_only_auc),
        "telltale features": ", ".join(t.feature for t in d.telltales[:4]) or DASH,
        "MAUVE (higher; chance floor)": _with(mv.mauve, mv.null05),
    }
    for name, dist in card.distances.items():
        label = f"{name.replace('_', ' ')}: KS (lower; chance level)"
        rows[label] = _with(dist.ks, dist.null95)
    pairs = {
        "first-turn distinct-2, sim / real": (ft.sim_distinct2, ft.real_distinct2, 3),
        "first-turn Vendi, sim / real": (ft.sim_vendi, ft.real_vendi, 1),
        "assistant-like phrases, sim / real": (ra.sim_phrase_share, ra.real_phrase_share, 3),
        "assistant-like by classifier, sim / real": (ra.sim_classifier_share, ra.real_classifier_share, 3),
    }
    for label, (a, b, digits) in pairs.items():
        rows[label] = f"{fmt_number(a, digits)} / {fmt_number(b, digits)}"
    if card.perplexity is not None:
        rows["held-out user perplexity (lower)"] = fmt_number(card.perplexity.simulator_ppl, 1)
    rows["sample: sim / real user turns"] = f"{fmt_int(card.sim.user_turns)} / {fmt_int(card.real.user_turns)}"
    return rows


def realism_cards(sims: list[Sim]) -> str:
    cards = [(s.label, s.realism) for s in sims if s.realism is not None]
    if not cards:
        return para("No realism card in these runs (the realism stage did not run).", "muted")
    floor = next((s.floor for s in sims if s.floor is not None), None)
    cols = cards + ([("real vs real (floor)", floor)] if floor else [])
    per = [card_rows(c) for _, c in cols if c is not None]
    labels = list(dict.fromkeys(k for p in per for k in p))
    rows = [[label, *[p.get(label, DASH) for p in per]] for label in labels]
    return (
        "<h3>Realism cards</h3>"
        + table(["figure", *[n for n, _ in cols]], rows, cls="realism")
        + para(
            "Each simulator's user turns against held-out real ones (docs/realism.md). The floor splits the real "
            "data in two: the best score reachable at this sample size.",
            "muted",
        )
        + (closest_section(cards, floor) if len(cards) > 1 else "")  # type: ignore[arg-type]
    )


def closest_section(cards: list[tuple[str, RealismCard]], floor: RealismCard | None) -> str:
    """Which simulator is closest to real users on each figure, and whether that is noise."""
    from .closest import closest_to_real

    def val(v: Any, ci: Any) -> str:
        return DASH if v is None else fmt_number(v) + _ci(ci)

    rows = [
        [
            r["figure"],
            r["closest"],
            val(r["value"], r["interval"]),
            r["runner_up"] or DASH,
            val(r["runner_up_value"], r["runner_up_interval"]),
            val(r["floor"], None),
            r["verdict"],
        ]
        for r in closest_to_real(cards, floor)
    ]
    return (
        "<h3>Closest to real users</h3>"
        + table(["figure", "closest", "value [95% CI]", "runner-up", "value [95% CI]", "real vs real", "verdict"], rows)
        + para(
            "Intervals: the discriminator AUC's bootstrap; on KS rows, of the simulated minus real median (shares: "
            "share). Within noise: both are within chance of real users (families dealt at random reach as far), "
            "or their 95% intervals overlap.",
            "muted",
        )
    )


def _diff_table(a: Sim, b: Sim) -> str:
    diffs = differences(a, b, list(AB_METRICS))
    if not diffs:
        return ""
    rows = []
    for d in diffs:
        m = get(d.metric, "conversation")
        digits = 2 if m is None or m.kind in ("int", "bool") else max(decimals(m), 2)
        sig = d.lo is not None and d.hi is not None and (d.lo > 0 or d.hi < 0)
        rows.append(
            [
                d.metric,
                fmt_number(d.mean_a, digits),
                fmt_number(d.mean_b, digits),
                fmt_number(d.diff, digits),
                f"[{fmt_number(d.lo, digits)}, {fmt_number(d.hi, digits)}]" if d.lo is not None else DASH,
                "yes" if sig else "no",
                f"{d.n:,} {'pairs' if d.paired else 'per side'}",
            ]
        )
    return f"<h3>{esc(b.label)} − {esc(a.label)}</h3>" + table(
        ["metric", f"mean {a.label}", f"mean {b.label}", "difference", "95% CI", "CI excludes 0", "n"],
        rows,
        cls="ab",
    )


def _user_texts(conv: dict[str, Any]) -> list[str]:
    return [str(m.get("content")) for m in conv["messages"] if isinstance(m, dict) and m.get("role") == "user"]


def _follow_up(conv: dict[str, Any]) -> str:
    users = _user_texts(conv)
    reason = (conv.get("meta") or {}).get("termination_reason") or DASH
    return f"{cut(users[1], 200) if len(users) > 1 else '(no follow-up)'} [ended: {reason}]"


def _examples(sims: list[Sim], limit: int = 5) -> str:
    keys = shared_seeds(sims[0], sims[1]) if len(sims) > 1 else []
    by = [{pair_key(c): c for c in s.conversations} for s in sims]
    keys = [k for k in keys if all(k in b for b in by)][:limit]
    if not keys:
        return ""
    rows = []
    for k in keys:
        seed_q = (_user_texts(by[0][k]) or [""])[0]
        rows.append([cut(seed_q, 120), *[_follow_up(b[k]) for b in by]])
    return "<h3>First follow-up on the same seeds</h3>" + table(
        ["seed question", *[s.label for s in sims]], rows, left=len(sims) + 1
    )


def ab_section(sims: list[Sim]) -> str:
    if len(sims) < 2 and not any(s.realism for s in sims):
        return ""
    parts = [realism_cards(sims)]
    if len(sims) > 1:
        parts.append(
            para(
                f"Per-conversation metrics of each simulator against {sims[0].label}, paired on the same seed "
                "(seed id and sample index); 95% intervals from 2,000 paired bootstrap resamples. Without shared "
                "seeds the sides are resampled independently."
            )
        )
        parts += [_diff_table(sims[0], b) for b in sims[1:]]
        parts.append(_examples(sims))
    return section("compare", "Simulators side by side", *parts)
