"""`realism(sim, real)`: compare a simulator's user turns with real users' and fill the card."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..conversation import Conversation
from ..errors import DialforgeError
from ..induce.embed import Embedder
from ..score.metrics import distinct_n, words
from . import discriminator as disc
from .card import Discriminator, Distance, FirstTurns, Mauve, Overall, RealismCard, RoleAdherence, Side
from .config import RealismConfig
from .distances import continuous_distance, share_distance
from .divergence import mauve
from .diversity import vendi
from .features import (
    UserTurn,
    assistant_turns,
    conversation_groups,
    is_follow_up_turn,
    is_question,
    reads_like_assistant,
    simulated,
    style_matrix,
    turns_per_conversation,
    user_turns,
)

log = logging.getLogger("dialforge.realism")

OVERALL_DEFINITION = (
    "mean of the available components, each in [0, 1] with 1 = like REAL: "
    "indistinguishability = 1 - 2|AUC - 0.5| (clipped); mauve; "
    "shape = 1 - mean KS/|share difference| over the four distributions; "
    "opening_diversity = min/max of the two first-turn Vendi scores; "
    "role = 1 - max(0, SIM's assistant-like share - REAL's) by the role classifier"
)
SMALL = 50  # fewer turns than this per side: the figures are noisy, the card says so


def _load(src: str | Path | Sequence[Conversation], fmt: str, warnings: list[str]) -> tuple[list[Conversation], str]:
    if isinstance(src, (str, Path)):
        from ..io import ReadReport, read_conversations

        report = ReadReport(path=str(src))
        convs = read_conversations(src, fmt, on_error="skip", report=report)
        if report.skipped:
            warnings.append(f"{src}: {len(report.skipped)} bad records skipped (first: {report.skipped[0]})")
        return convs, str(src)
    return list(src), ""


def _sample(n_items: int, k: int, rng: np.random.Generator) -> np.ndarray:
    if k >= n_items:
        return np.arange(n_items)
    return np.sort(rng.choice(n_items, k, replace=False))


def _openings(turns: Sequence[UserTurn]) -> list[str]:
    return list(dict.fromkeys(t.text for t in turns if t.position == 0))


class _Sides:
    """Everything sampled from both sides, embedded once."""

    def __init__(self, sim: list[UserTurn], real: list[UserTurn], real_asst: list[UserTurn], cfg: RealismConfig):
        rng = np.random.default_rng(cfg.seed)
        n = min(len(sim), len(real), cfg.max_turns)
        self.sim = [sim[i] for i in _sample(len(sim), n, rng)]
        self.real = [real[i] for i in _sample(len(real), n, rng)]
        self.asst = [real_asst[i] for i in _sample(len(real_asst), min(len(real_asst), cfg.max_turns), rng)]
        o_sim, o_real = _openings(sim), _openings(real)
        k = min(len(o_sim), len(o_real), cfg.first_turns)
        self.open_sim = [o_sim[i] for i in _sample(len(o_sim), k, rng)]
        self.open_real = [o_real[i] for i in _sample(len(o_real), k, rng)]

    def embed(self, embedder: Embedder) -> None:
        parts = [
            [t.text for t in self.sim],
            [t.text for t in self.real],
            [t.text for t in self.asst],
            self.open_sim,
            self.open_real,
        ]
        vecs = embedder.embed([t for p in parts for t in p])
        out, at = [], 0
        for p in parts:
            out.append(vecs[at : at + len(p)])
            at += len(p)
        self.e_sim, self.e_real, self.e_asst, self.e_open_sim, self.e_open_real = out
        self.s_sim = style_matrix([t.text for t in self.sim])
        self.s_real = style_matrix([t.text for t in self.real])
        self.s_asst = style_matrix([t.text for t in self.asst])


def _discriminator(s: _Sides, cfg: RealismConfig) -> Discriminator:
    y = np.r_[np.ones(len(s.sim)), np.zeros(len(s.real))].astype(int)
    groups = [f"s:{t.group}" for t in s.sim] + [f"r:{t.group}" for t in s.real]
    style = np.vstack([s.s_sim, s.s_real])
    X = np.hstack([np.vstack([s.e_sim, s.e_real]), style])
    auc, scores, k = disc.cross_validated_auc(X, y, groups, cfg.folds, cfg.seed)
    if auc is None or scores is None:
        return Discriminator(auc=None, n_per_side=len(s.sim), folds=k)
    style_auc, _, _ = disc.cross_validated_auc(style, y, groups, cfg.folds, cfg.seed)
    return Discriminator(
        auc=round(auc, 4),
        ci95=disc.bootstrap_auc(y, scores, cfg.bootstrap, cfg.seed),
        chance95=disc.chance_auc(scores, groups[: len(s.sim)], groups[len(s.sim) :], cfg.bootstrap, cfg.seed),
        style_only_auc=None if style_auc is None else round(style_auc, 4),
        n_per_side=len(s.sim),
        folds=k,
        telltales=disc.telltales(style, y, cfg.seed),
    )


def _mauve(s: _Sides, cfg: RealismConfig) -> Mauve:
    if min(len(s.e_sim), len(s.e_real)) < 2:
        return Mauve(mauve=None, n_per_side=len(s.sim), clusters=0, pca_dims=0, scaling=5.0)
    value, null, k, dims = mauve(
        s.e_sim,
        s.e_real,
        seed=cfg.seed,
        clusters=cfg.mauve_clusters,
        n_boot=cfg.bootstrap,
        p_groups=[t.group for t in s.sim],
        q_groups=[t.group for t in s.real],
    )
    return Mauve(mauve=round(value, 4), null05=null, n_per_side=len(s.sim), clusters=k, pca_dims=dims, scaling=5.0)


def distances(
    sim: Sequence[Conversation],
    real: Sequence[Conversation],
    sim_turns: Sequence[UserTurn],
    real_turns: Sequence[UserTurn],
    *,
    n_boot: int = 0,
    seed: int = 0,
) -> dict[str, Distance]:
    """The four distributions, over every turn and conversation (no sampling: they are cheap).
    SIM counts simulated user turns only (seed turns are real people's words); chance levels
    deal whole conversation families."""

    def fam(turns: Sequence[UserTurn]) -> list[str]:
        return [t.group for t in turns]

    def follow(turns: Sequence[UserTurn]) -> tuple[list[bool], list[str]]:
        pairs = [(f, t.group) for t in turns if (f := is_follow_up_turn(t)) is not None]
        return [f for f, _ in pairs], [g for _, g in pairs]

    (fs, gs), (fr, gr) = follow(sim_turns), follow(real_turns)
    turn_groups = (fam(sim_turns), fam(real_turns))
    conv_groups = (conversation_groups(sim, simulated_only=True), conversation_groups(real))
    return {
        "words_per_user_turn": continuous_distance(
            [len(words(t.text)) for t in sim_turns],
            [len(words(t.text)) for t in real_turns],
            n_boot=n_boot,
            seed=seed,
            groups=turn_groups,
        ),
        "user_turns_per_conversation": continuous_distance(
            turns_per_conversation(sim, simulated_only=True),
            turns_per_conversation(real),
            n_boot=n_boot,
            seed=seed,
            groups=conv_groups,
        ),
        "question_rate": share_distance(
            [is_question(t.text) for t in sim_turns],
            [is_question(t.text) for t in real_turns],
            n_boot=n_boot,
            seed=seed,
            groups=turn_groups,
        ),
        "follow_up_rate": share_distance(fs, fr, n_boot=n_boot, seed=seed, groups=(gs, gr)),
    }


def _first_turns(s: _Sides) -> FirstTurns:
    n = len(s.open_sim)
    if n < 2:
        return FirstTurns(n_per_side=n, sim_distinct2=None, real_distinct2=None, sim_vendi=None, real_vendi=None)
    return FirstTurns(
        n_per_side=n,
        sim_distinct2=round(distinct_n(s.open_sim, 2), 4),
        real_distinct2=round(distinct_n(s.open_real, 2), 4),
        sim_vendi=round(vendi(s.e_open_sim), 3),
        real_vendi=round(vendi(s.e_open_real), 3),
    )


def _wilson(k: int, n: int) -> tuple[float, float] | None:
    if n == 0:
        return None
    p, z = k / n, 1.96
    mid = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, mid - half)), float(min(1.0, mid + half))


def _role(
    s: _Sides, sim_turns: Sequence[UserTurn], real_turns: Sequence[UserTurn], cfg: RealismConfig
) -> RoleAdherence:
    base: dict[str, Any] = {
        "sim_phrase_share": round(float(np.mean([reads_like_assistant(t.text) for t in sim_turns])), 4),
        "real_phrase_share": round(float(np.mean([reads_like_assistant(t.text) for t in real_turns])), 4),
        "n_sim": len(s.sim),
        "n_real_user": len(s.real),
        "n_real_assistant": len(s.asst),
    }
    X = np.vstack([np.hstack([s.e_real, s.s_real]), np.hstack([s.e_asst, s.s_asst])]) if len(s.asst) else None
    y = np.r_[np.zeros(len(s.real)), np.ones(len(s.asst))].astype(int)
    groups = [t.group for t in s.real] + [t.group for t in s.asst]
    auc, scores, _ = (None, None, 0) if X is None else disc.cross_validated_auc(X, y, groups, cfg.folds, cfg.seed)
    if X is None or auc is None or scores is None:
        return RoleAdherence(sim_classifier_share=None, real_classifier_share=None, classifier_auc=None, **base)
    p_sim = disc.fit_predict(X, y, np.hstack([s.e_sim, s.s_sim]), cfg.seed)
    k = int((p_sim > 0.5).sum())
    return RoleAdherence(
        sim_classifier_share=round(k / len(p_sim), 4),
        real_classifier_share=round(float((scores[: len(s.real)] > 0.5).mean()), 4),
        sim_classifier_ci95=_wilson(k, len(p_sim)),
        classifier_auc=round(auc, 4),
        **base,
    )


def overall(d: Discriminator, m: Mauve, dist: dict[str, Distance], f: FirstTurns, r: RoleAdherence) -> Overall:
    comp: dict[str, float] = {}
    if d.auc is not None:
        comp["indistinguishability"] = float(np.clip(1 - 2 * abs(d.auc - 0.5), 0, 1))
    if m.mauve is not None:
        comp["mauve"] = m.mauve
    ks = [x.ks for x in dist.values() if x.ks is not None]
    if ks:
        comp["shape"] = float(1 - np.mean(ks))
    if f.sim_vendi and f.real_vendi:
        comp["opening_diversity"] = min(f.sim_vendi, f.real_vendi) / max(f.sim_vendi, f.real_vendi)
    if r.sim_classifier_share is not None and r.real_classifier_share is not None:
        comp["role"] = float(np.clip(1 - max(0.0, r.sim_classifier_share - r.real_classifier_share), 0, 1))
    else:
        comp["role"] = float(np.clip(1 - max(0.0, r.sim_phrase_share - r.real_phrase_share), 0, 1))
    comp = {k: round(v, 4) for k, v in comp.items()}
    return Overall(score=round(float(np.mean(list(comp.values()))), 4), components=comp, definition=OVERALL_DEFINITION)


def _side(path: str, convs: Sequence[Conversation], turns: Sequence[UserTurn]) -> Side:
    return Side(
        path=path or None, conversations=len(convs), user_turns=len(turns), groups=len({t.group for t in turns})
    )


def realism(
    sim: str | Path | Sequence[Conversation],
    real: str | Path | Sequence[Conversation],
    config: RealismConfig | None = None,
    *,
    embedder: Embedder | None = None,
    **overrides: Any,
) -> RealismCard:
    """Compare SIM's user turns with REAL's. Paths are read in any supported format (bad
    records skipped and reported on the card); lists of conversations are used as they are."""
    t0 = time.perf_counter()
    cfg = config or RealismConfig()
    if overrides:
        cfg = RealismConfig.model_validate({**cfg.model_dump(), **overrides})
    warnings: list[str] = []
    sim_convs, sim_path = _load(sim, cfg.sim_format, warnings)
    real_convs, real_path = _load(real, cfg.real_format, warnings)
    # SIM: only what the simulator wrote; seed turns (meta.seed) are real people's words,
    # and a conversation without a simulated user turn contributes nothing
    sim_convs = simulated(sim_convs)
    sim_turns, real_turns = user_turns(sim_convs, simulated_only=True), user_turns(real_convs)
    for name, path, turns in (("SIM", sim_path, sim_turns), ("REAL", real_path, real_turns)):
        if not turns:
            raise DialforgeError(f"{path or name}: no user turns to compare")
        if len(turns) < SMALL:
            warnings.append(f"{name} has only {len(turns)} user turns: the figures are noisy")
    sides = _Sides(sim_turns, real_turns, assistant_turns(real_convs), cfg)
    if embedder is None and cfg.cache_dir:
        Path(cfg.cache_dir).mkdir(parents=True, exist_ok=True)
    sides.embed(embedder or Embedder(cfg.embedder, cache_dir=cfg.cache_dir))
    d = _discriminator(sides, cfg)
    m = _mauve(sides, cfg)
    dist = distances(sim_convs, real_convs, sim_turns, real_turns, n_boot=cfg.bootstrap, seed=cfg.seed)
    f = _first_turns(sides)
    r = _role(sides, sim_turns, real_turns, cfg)
    if d.auc is None:
        warnings.append("too few conversation families for a cross-validated discriminator")
    if r.classifier_auc is None:
        warnings.append("REAL has no assistant turns (or too few families): no role classifier")
    ppl = None
    if cfg.simulator_model:
        from .perplexity import perplexity_figure

        ppl = perplexity_figure(
            cfg.simulator_model,
            real_convs,
            base=cfg.base_model,
            template=cfg.template,
            max_conversations=cfg.perplexity_conversations,
            max_length=cfg.max_length,
        )
    for w in warnings:  # caveats of the card (it holds them); the CLI prints them last
        log.info("%s", w)
    return RealismCard(
        sim=_side(sim_path, sim_convs, sim_turns),
        real=_side(real_path, real_convs, real_turns),
        seed=cfg.seed,
        discriminator=d,
        mauve=m,
        distances=dist,
        first_turns=f,
        role_adherence=r,
        perplexity=ppl,
        overall=overall(d, m, dist, f, r),
        warnings=warnings,
        seconds=round(time.perf_counter() - t0, 2),
    )
