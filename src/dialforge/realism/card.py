"""The realism card: every figure with its sample size, its 95% interval where there is one,
and its direction. `figures()` is the flat one-key-per-figure view the CLI prints with
`--json` and the report lays side by side."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Direction = Literal["0.5 is best", "higher is better", "lower is better", "closer to real is better"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Side(_Model):
    """What one side of the comparison holds."""

    path: str | None = None
    conversations: int
    user_turns: int  # distinct user turns in context
    groups: int  # conversation families (OASST trees, else opening messages)


class Telltale(_Model):
    """A style feature that gives the simulator away: its weight in a style-only classifier
    (positive = pushes towards 'simulated') and its mean on each side."""

    feature: str
    weight: float
    sim_mean: float
    real_mean: float


class Discriminator(_Model):
    """`chance95`: the AUC's 2.5th-97.5th percentiles when whole conversation families are
    dealt to the two labels at random (out-of-fold scores fixed): an AUC inside it is what
    two samples of one distribution reach by chance."""

    auc: float | None
    ci95: tuple[float, float] | None = None
    chance95: tuple[float, float] | None = None
    style_only_auc: float | None = None
    n_per_side: int
    folds: int
    telltales: list[Telltale] = Field(default_factory=list)
    direction: Direction = "0.5 is best"


class Mauve(_Model):
    """`null05`: the 5th percentile of MAUVE when whole conversation families are dealt to
    the two sides at random (clusters fixed): a value above it is what one distribution
    scores against itself at these sample sizes."""

    mauve: float | None
    null05: float | None = None
    n_per_side: int
    clusters: int
    pca_dims: int
    scaling: float
    direction: Direction = "higher is better"


class Distance(_Model):
    """Two samples of one quantity. For counts: KS statistic and Wasserstein-1 distance, with
    both medians. For yes/no shares: both shares and their absolute difference (the KS
    statistic of two Bernoulli samples). `null95`: the distance two same-distribution samples
    of these sizes reach by chance (95th percentile, families dealt at random); `diff_ci95`: 95%
    bootstrap interval of SIM median - REAL median (shares: SIM share - REAL share)."""

    kind: Literal["continuous", "share"]
    ks: float | None
    ks_pvalue: float | None = None
    null95: float | None = None
    diff_ci95: tuple[float, float] | None = None
    wasserstein: float | None = None
    sim_median: float | None = None
    real_median: float | None = None
    sim_mean: float | None = None
    real_mean: float | None = None
    n_sim: int
    n_real: int
    direction: Direction = "lower is better"


class FirstTurns(_Model):
    """Diversity of opening user turns, each side, on equal-size samples (both figures grow
    with sample size, so the sides are only comparable at equal n)."""

    n_per_side: int
    sim_distinct2: float | None
    real_distinct2: float | None
    sim_vendi: float | None
    real_vendi: float | None
    direction: Direction = "closer to real is better"


class RoleAdherence(_Model):
    """How many user turns read like an assistant: by phrase, and by a user-vs-assistant
    classifier trained on REAL's own two roles (its cross-validated AUC says how well it
    tells the roles apart; REAL's own share is out-of-fold)."""

    sim_phrase_share: float
    real_phrase_share: float
    sim_classifier_share: float | None
    real_classifier_share: float | None
    sim_classifier_ci95: tuple[float, float] | None = None
    classifier_auc: float | None
    n_sim: int
    n_real_user: int
    n_real_assistant: int
    direction: Direction = "lower is better"


class Perplexity(_Model):
    """Perplexity of REAL's user turns (the training renderer's mask: user-turn tokens and
    their end-of-turn token only) under the simulator and under its base model."""

    simulator: str
    base: str | None
    template: str
    conversations: int
    tokens: int
    simulator_ppl: float
    base_ppl: float | None
    direction: Direction = "lower is better"


class Overall(_Model):
    score: float
    components: dict[str, float]
    definition: str
    direction: Direction = "higher is better"


class RealismCard(_Model):
    sim: Side
    real: Side
    seed: int
    discriminator: Discriminator
    mauve: Mauve
    distances: dict[str, Distance]
    first_turns: FirstTurns
    role_adherence: RoleAdherence
    perplexity: Perplexity | None = None
    overall: Overall
    warnings: list[str] = Field(default_factory=list)
    seconds: float = 0.0

    def figures(self) -> dict[str, Any]:
        """One key per figure (the `--json` view)."""
        d = self.discriminator
        out: dict[str, Any] = {
            "discriminator_auc": d.auc,
            "discriminator_auc_ci95": list(d.ci95) if d.ci95 else None,
            "discriminator_auc_chance95": list(d.chance95) if d.chance95 else None,
            "discriminator_style_only_auc": d.style_only_auc,
            "discriminator_telltales": [t.feature for t in d.telltales],
            "mauve": self.mauve.mauve,
            "mauve_null05": self.mauve.null05,
        }
        for name, dist in self.distances.items():
            out[f"{name}_ks"] = dist.ks
            out[f"{name}_null95"] = dist.null95
            if dist.kind == "continuous":
                out[f"{name}_wasserstein"] = dist.wasserstein
                out[f"{name}_median"] = {"sim": dist.sim_median, "real": dist.real_median}
            else:
                out[f"{name}"] = {"sim": dist.sim_mean, "real": dist.real_mean}
        f = self.first_turns
        out["first_turn_distinct2"] = {"sim": f.sim_distinct2, "real": f.real_distinct2}
        out["first_turn_vendi"] = {"sim": f.sim_vendi, "real": f.real_vendi}
        r = self.role_adherence
        out["assistant_like_phrase_share"] = {"sim": r.sim_phrase_share, "real": r.real_phrase_share}
        out["assistant_like_classifier_share"] = {"sim": r.sim_classifier_share, "real": r.real_classifier_share}
        out["role_classifier_auc"] = r.classifier_auc
        if self.perplexity is not None:
            out["heldout_user_perplexity"] = {
                "simulator": self.perplexity.simulator_ppl,
                "base": self.perplexity.base_ppl,
            }
        out["overall_realism"] = self.overall.score
        out["sample_sizes"] = {
            "sim_conversations": self.sim.conversations,
            "real_conversations": self.real.conversations,
            "sim_user_turns": self.sim.user_turns,
            "real_user_turns": self.real.user_turns,
            "discriminator_per_side": d.n_per_side,
            "mauve_per_side": self.mauve.n_per_side,
            "first_turns_per_side": f.n_per_side,
        }
        out["seed"] = self.seed
        out["warnings"] = list(self.warnings)
        return out

    def to_markdown(self) -> str:
        """A human-readable card (also what `dialforge realism` prints without --json)."""
        return render_markdown(self)


def _fmt(x: float | None, nd: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{nd}f}"


def _ci(ci: tuple[float, float] | None) -> str:
    return f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""


def render_markdown(card: RealismCard) -> str:
    d, m, f, r = card.discriminator, card.mauve, card.first_turns, card.role_adherence
    lines = [
        "# Realism card",
        "",
        f"SIM: {card.sim.path or '(in memory)'}: {card.sim.conversations} conversations, "
        f"{card.sim.user_turns} user turns. REAL: {card.real.path or '(in memory)'}: "
        f"{card.real.conversations} conversations, {card.real.user_turns} user turns. Seed {card.seed}.",
        "",
        "| figure | SIM | REAL | distance / score [95% CI] | n | direction |",
        "|---|---|---|---|---|---|",
        f"| discriminator AUC (embeddings + style; chance) | | | {_fmt(d.auc)}{_ci(d.ci95)}"
        f"{' (' + _ci(d.chance95).strip() + ')' if d.chance95 else ''} | {d.n_per_side}/side, "
        f"{d.folds}-fold | {d.direction} |",
        f"| discriminator AUC (style only) | | | {_fmt(d.style_only_auc)} | {d.n_per_side}/side | {d.direction} |",
        f"| MAUVE (same-distribution 5th pct) | | | {_fmt(m.mauve)} ({_fmt(m.null05)}) | {m.n_per_side}/side, "
        f"{m.clusters} clusters | {m.direction} |",
    ]
    for name, x in card.distances.items():
        if x.kind == "continuous":
            lines.append(
                f"| {name} (median; diff CI) | {_fmt(x.sim_median, 1)} | {_fmt(x.real_median, 1)}{_ci(x.diff_ci95)} | "
                f"KS {_fmt(x.ks)} (chance {_fmt(x.null95)}), W1 {_fmt(x.wasserstein, 2)} | {x.n_sim}/{x.n_real} "
                f"| {x.direction} |"
            )
        else:
            lines.append(
                f"| {name} (share; diff CI) | {_fmt(x.sim_mean)} | {_fmt(x.real_mean)}{_ci(x.diff_ci95)} | "
                f"abs diff {_fmt(x.ks)} (chance {_fmt(x.null95)}) | {x.n_sim}/{x.n_real} | {x.direction} |"
            )
    lines += [
        f"| first-turn distinct-2 | {_fmt(f.sim_distinct2)} | {_fmt(f.real_distinct2)} | | {f.n_per_side}/side "
        f"| {f.direction} |",
        f"| first-turn Vendi | {_fmt(f.sim_vendi, 1)} | {_fmt(f.real_vendi, 1)} | | {f.n_per_side}/side "
        f"| {f.direction} |",
        f"| assistant-like user turns (phrases) | {_fmt(r.sim_phrase_share)} | {_fmt(r.real_phrase_share)} | | "
        f"{r.n_sim}/{r.n_real_user} | {r.direction} |",
        f"| assistant-like user turns (classifier) | {_fmt(r.sim_classifier_share)}{_ci(r.sim_classifier_ci95)} "
        f"| {_fmt(r.real_classifier_share)} | role classifier AUC {_fmt(r.classifier_auc)} | "
        f"{r.n_sim}/{r.n_real_user}+{r.n_real_assistant} | {r.direction} |",
    ]
    if card.perplexity is not None:
        p = card.perplexity
        lines.append(
            f"| held-out REAL user-turn perplexity | simulator {_fmt(p.simulator_ppl, 2)} | base "
            f"{_fmt(p.base_ppl, 2)} | | {p.conversations} conv, {p.tokens} tokens | {p.direction} |"
        )
    o = card.overall
    lines += [
        f"| **overall realism** | | | **{o.score:.3f}** | | {o.direction} |",
        "",
        "Overall: " + o.definition,
        "Components: " + ", ".join(f"{k} {v:.3f}" for k, v in o.components.items()),
    ]
    if d.telltales:
        lines += ["", "What gives the simulator away (style-only classifier weight; + = towards simulated):"]
        lines += [
            f"- {t.feature}: {t.weight:+.2f} (SIM mean {t.sim_mean:.3f}, REAL mean {t.real_mean:.3f})"
            for t in d.telltales
        ]
    if card.warnings:
        lines += ["", "Warnings:"] + [f"- {w}" for w in card.warnings]
    return "\n".join(lines) + "\n"
