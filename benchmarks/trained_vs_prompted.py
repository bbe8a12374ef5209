"""Tables for docs/benchmarks.md from a finished `dialforge run examples/trained_vs_prompted.yaml`:
the realism figures of every simulator against the held-out real users (with the real-vs-real
floor), the "closest to real users" verdicts, and the issue's done-when checks on the trained
simulators (>= 2 simulated user turns, no template token in any text).

    python benchmarks/trained_vs_prompted.py RUN_DIR
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from dialforge.realism.card import RealismCard
from dialforge.report.closest import closest_to_real

TEMPLATE_TOKENS = re.compile(r"<s>|</s>|<\|im_start\|>|<\|im_end\|>|<\|endoftext\|>|\bHuman:|\bAssistant:")


def _f(x: float | None, d: int = 3) -> str:
    return "—" if x is None else f"{x:.{d}f}"


def _ci(ci: object) -> str:
    return f" [{_f(ci[0], 2)}, {_f(ci[1], 2)}]" if isinstance(ci, (list, tuple)) and ci else ""  # type: ignore[index]


def figures(card: RealismCard) -> dict[str, str]:
    d, m = card.discriminator, card.mauve
    row = {
        "discriminator AUC [95% CI] (0.5 best)": _f(d.auc) + _ci(d.ci95),
        "MAUVE (higher)": _f(m.mauve),
    }
    for name, dist in card.distances.items():
        row[f"{name.replace('_', ' ')} KS (lower)"] = _f(dist.ks)
    ft = card.first_turns
    row["first-turn distinct-2 / Vendi"] = f"{_f(ft.sim_distinct2)} / {_f(ft.sim_vendi, 1)}"
    row["overall realism (higher)"] = _f(card.overall.score)
    row["user turns (sim / real)"] = f"{card.sim.user_turns} / {card.real.user_turns}"
    return row


def done_when(conv_file: Path) -> tuple[int, int, int]:
    """(conversations, with >= 2 simulated user turns, with a template token in a text)."""
    n = two = leaks = 0
    for line in conv_file.read_text().splitlines():
        c = json.loads(line)
        n += 1
        users = [m for m in c["messages"] if m["role"] == "user" and not (m.get("meta") or {}).get("seed")]
        ok = c["meta"].get("termination_reason") != "error"
        two += ok and len(users) >= 2
        leaks += any(TEMPLATE_TOKENS.search(m["content"]) for m in c["messages"])
    return n, two, leaks


def main(run: Path) -> None:
    state = json.loads((run / "pipeline.json").read_text())
    stages = state["stages"]
    sims = [k.split(".", 1)[1] for k in stages if k.startswith("realism.") and "card" in stages[k]]
    cards = [(n, RealismCard.model_validate_json((run / stages[f"realism.{n}"]["card"]).read_text())) for n in sims]
    floor_path = run / stages[f"realism.{sims[0]}"]["floor"]
    floor = RealismCard.model_validate_json(floor_path.read_text())
    cols = [*cards, ("real vs real (floor)", floor)]
    per = [figures(c) for _, c in cols]
    print("| figure | " + " | ".join(n for n, _ in cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for label in per[0]:
        print(f"| {label} | " + " | ".join(p.get(label, "—") for p in per) + " |")
    print()
    print("| figure | closest | value [95% CI] | runner-up | value [95% CI] | real vs real | verdict |")
    print("|---|---|---|---|---|---|---|")
    for r in closest_to_real(cards, floor):
        print(
            f"| {r['figure']} | {r['closest']} | {_f(r['value'])}{_ci(r['interval'])} | {r['runner_up'] or '—'} | "
            f"{_f(r['runner_up_value'])}{_ci(r['runner_up_interval'])} | {_f(r['floor'])} | {r['verdict']} |"
        )
    print()
    for n in sims:
        total, two, leaks = done_when(run / "simulate" / n / "conversations.jsonl")
        reasons = stages[f"simulate.{n}"].get("termination_reasons", {})
        print(
            f"- {n}: {two}/{total} conversations with >= 2 simulated user turns, {leaks} with a template token; "
            f"ended by {reasons}"
        )
    ts = stages.get("train_simulator")
    if ts:
        print(
            f"- train_simulator: {ts['examples']} examples, {ts['steps']} steps, loss {_f(ts['train_loss'])}, "
            f"{ts['wall_s']} s"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
