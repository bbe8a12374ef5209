"""Which simulator is closest to real users, figure by figure, and whether that is noise.

For each realism figure the simulators are ranked by their distance to real users (AUC: |AUC -
0.5|; MAUVE: higher; KS distances: lower; first-turn Vendi: |sim - real|; perplexity: lower;
overall: higher). The verdict says whether the ranking means anything at these sample sizes:
- "within noise": the closest and at least one other simulator are within chance of real
  users (AUC inside the families-shuffled chance band, MAUVE above its null 5th percentile, KS
  below its null 95th percentile): two samples of real users differ as much;
- "within noise of RUNNER-UP": the 95% bootstrap intervals of the two gaps overlap;
- "clear": neither, or only the closest is within chance of real users;
- "no interval": a point estimate with no interval or chance level (read it as a ranking).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..realism.card import RealismCard

Interval = tuple[float, float]


@dataclass
class _Value:
    value: float  # the figure as shown
    gap: float  # distance to real users (lower = closer)
    interval: Interval | None = None  # 95% interval of the figure as shown
    gap_interval: Interval | None = None  # 95% interval of the gap
    chance: bool | None = None  # within chance of real users (None: no chance level)


def _gap_interval(ci: Any, centre: float) -> Interval | None:
    """The interval of |x - centre| when x lies in `ci`."""
    if not ci:
        return None
    lo, hi = float(ci[0]) - centre, float(ci[1]) - centre
    far = max(abs(lo), abs(hi))
    return (0.0, far) if lo <= 0 <= hi else (min(abs(lo), abs(hi)), far)


def _figures(card: RealismCard) -> dict[str, _Value]:
    out: dict[str, _Value] = {}
    d = card.discriminator
    if d.auc is not None:
        chance = d.chance95[0] <= d.auc <= d.chance95[1] if d.chance95 else None
        ci = tuple(d.ci95) if d.ci95 else None
        out["discriminator AUC (0.5 is best)"] = _Value(d.auc, abs(d.auc - 0.5), ci, _gap_interval(ci, 0.5), chance)  # type: ignore[arg-type]
    m = card.mauve
    if m.mauve is not None:
        out["MAUVE (higher)"] = _Value(m.mauve, -m.mauve, None, None, m.mauve >= m.null05 if m.null05 else None)
    for name, dist in card.distances.items():
        if dist.ks is None:
            continue
        ci = tuple(dist.diff_ci95) if dist.diff_ci95 else None
        out[f"{name.replace('_', ' ')}: KS (lower)"] = _Value(
            dist.ks,
            dist.ks,
            ci,  # type: ignore[arg-type]
            _gap_interval(ci, 0.0),
            dist.ks <= dist.null95 if dist.null95 is not None else None,
        )
    ft = card.first_turns
    if ft.sim_vendi is not None and ft.real_vendi is not None:
        out["first-turn Vendi (closest to real)"] = _Value(ft.sim_vendi, abs(ft.sim_vendi - ft.real_vendi))
    if card.perplexity is not None:
        ppl = card.perplexity.simulator_ppl
        out["held-out user perplexity (lower)"] = _Value(ppl, ppl)
    out["overall realism (higher)"] = _Value(card.overall.score, -card.overall.score)
    return out


def _verdict(best: tuple[str, _Value], runner: tuple[str, _Value] | None, within: list[str]) -> str:
    (name, b) = best
    if runner is None:
        return "only one simulator has this figure"
    r = runner[1]
    if b.chance and len(within) > 1:
        return f"within noise: {len(within)} simulators are within chance of real users ({', '.join(within)})"
    if b.chance:
        return f"clear: only {name} is within chance of real users"
    if r.gap == b.gap:
        return f"tied with {runner[0]}"
    if b.gap_interval and r.gap_interval:
        if b.gap_interval[1] >= r.gap_interval[0]:
            return f"within noise of {runner[0]} (95% intervals overlap)"
        return "clear: 95% intervals do not overlap"
    if b.chance is not None:
        return "clear: no simulator is within chance of real users"
    return "no interval: a ranking only"


def closest_to_real(cards: list[tuple[str, RealismCard]], floor: RealismCard | None = None) -> list[dict[str, Any]]:
    """One row per realism figure: the closest simulator and the runner-up (value, 95%
    interval), the real-vs-real floor, and the verdict (see the module docstring)."""
    per = [(label, _figures(card)) for label, card in cards]
    floor_figs = _figures(floor) if floor is not None else {}
    names = list(dict.fromkeys(k for _, f in per for k in f))
    names.sort(key=lambda k: k.startswith("overall"))  # the summary figure last
    rows = []
    for fig in names:
        have = sorted(((label, f[fig]) for label, f in per if fig in f), key=lambda x: x[1].gap)
        best, runner = have[0], (have[1] if len(have) > 1 else None)
        within = [label for label, v in have if v.chance]
        fl = floor_figs.get(fig)
        rows.append(
            {
                "figure": fig,
                "closest": best[0],
                "value": best[1].value,
                "interval": best[1].interval,
                "runner_up": runner[0] if runner else None,
                "runner_up_value": runner[1].value if runner else None,
                "runner_up_interval": runner[1].interval if runner else None,
                "floor": fl.value if fl else None,
                "within_chance": within,
                "verdict": _verdict(best, runner, within),
            }
        )
    return rows
