"""Strategy rankers measured on real labels, leave one dialogue out.

    python benchmarks/ranker_recall.py [--boot 1000]

A strategy ranker sees the assistant's last answer and ranks the strategies a user could
apply next. To measure it we need real multi-turn dialogues whose user turns carry labels
of what the user did: the shipped Schema-Guided Dialogue dialogues (`data/sgd/train`, 15
dialogues, each user turn annotated with its dialogue acts: INFORM, REQUEST, SELECT, ...) and
the ConvLab-3 MultiWOZ 2.1 sample (`data/convlab3`, 10 dialogues, unified intents: inform,
request, thank, bye, ...). A user turn's label is its set of acts ("AFFIRM+REQUEST"): the
"strategy" it followed. The turn's previous answer is the system utterance before it.

For each held-out dialogue, every user turn with a previous answer is ranked against the
labels of all *other* dialogues:
- provenance: max cosine between the answer and the answers that preceded the label's turns
  (dialforge's default ranker: `StrategyUser.scores`);
- embedding: cosine between the answer and the centroid of the label's user turns (the
  analogue of the strategy centroid);
- popularity: how often the label occurs (no look at the answer);
- chance: a random order (MRR = mean of H(n)/n, recall@k = k/n).
A label that never occurs in the other dialogues cannot be ranked by any of them: such turns
count as misses for all (rank n). Intervals: 95% percentile bootstrap over dialogues.

The shortlist the simulator sees (`strategy.threshold`, `strategy.min_candidates`): for the
provenance ranker, how often no label clears the threshold (today: the K best are shown, all
of them here), how often one label alone does, the mean shortlist size and how often the
label the user really took is on it, with `min_candidates` 1 (the old rule) and 5.

The LLM ranker (`ranker: llm`) needs a real model and is not run here.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from dialforge.induce.embed import Embedder

ROOT = Path(__file__).resolve().parents[1]
Turn = tuple[int, str, str, str]  # (dialogue, previous answer, user turn, label)


def sgd_turns(files: list[Path]) -> list[Turn]:
    out: list[Turn] = []
    d = 0
    for f in files:
        for dl in json.loads(f.read_text()):
            prev = None
            for t in dl["turns"]:
                if t["speaker"] == "SYSTEM":
                    prev = t["utterance"]
                    continue
                acts = sorted({a["act"] for fr in t["frames"] for a in fr["actions"]})
                if prev is not None and acts:
                    out.append((d, prev, t["utterance"], "+".join(acts)))
            d += 1
    return out


def convlab_turns(path: Path) -> list[Turn]:
    out: list[Turn] = []
    for d, dl in enumerate(json.loads(path.read_text())):
        prev = None
        for t in dl["turns"]:
            if t["speaker"] == "system":
                prev = t["utterance"]
                continue
            acts = sorted({a["intent"] for kind in t["dialogue_acts"].values() for a in kind})
            if prev is not None and acts:
                out.append((d, prev, t["utterance"], "+".join(acts)))
    return out


def ranks(turns: list[Turn], emb: Embedder) -> dict[str, Any]:
    """Per turn: the gold label's rank under each ranker, and the provenance scores."""
    labels = sorted({t[3] for t in turns})
    li = {x: i for i, x in enumerate(labels)}
    a = emb.embed([t[1] for t in turns])
    u = emb.embed([t[2] for t in turns])
    dlg = np.array([t[0] for t in turns])
    lab = np.array([li[t[3]] for t in turns])
    n = len(labels)
    out: dict[str, list[int]] = {"provenance": [], "embedding": [], "popularity": []}
    prov_scores: list[np.ndarray] = []
    for i, t in enumerate(turns):
        other = dlg != t[0]
        sims = a[other] @ a[i]
        prov = np.full(n, -np.inf)
        np.maximum.at(prov, lab[other], sims)
        cent = np.zeros((n, u.shape[1]), dtype=np.float64)
        np.add.at(cent, lab[other], u[other])
        norm = np.linalg.norm(cent, axis=1)
        seen = norm > 0
        emb_score = np.full(n, -np.inf)
        emb_score[seen] = (cent[seen] / norm[seen, None]) @ a[i]
        pop = np.bincount(lab[other], minlength=n).astype(float)
        pop[pop == 0] = -np.inf
        gold = lab[i]
        for name, s in (("provenance", prov), ("embedding", emb_score), ("popularity", pop)):
            # unseen gold: rank n; ties with the gold count half (random tie-break on average)
            r = n if not np.isfinite(s[gold]) else 1 + int((s > s[gold]).sum()) + int((s == s[gold]).sum() - 1) // 2
            out[name].append(r)
        prov_scores.append(prov)
    return {"labels": n, "dialogues": dlg, "ranks": {k: np.array(v) for k, v in out.items()}, "prov": prov_scores}


def _metrics(r: np.ndarray, n: int) -> dict[str, float]:
    return {"mrr": float(np.mean(1 / r)), "r1": float(np.mean(r <= 1)), "r3": float(np.mean(r <= 3))}


def _boot(dlg: np.ndarray, fn: Any, n_boot: int, seed: int = 0) -> tuple[float, float]:
    ids = np.unique(dlg)
    rng = np.random.default_rng(seed)
    rows = {d: np.flatnonzero(dlg == d) for d in ids}
    vals = [fn(np.concatenate([rows[d] for d in rng.choice(ids, len(ids))])) for _ in range(n_boot)]
    lo, hi = np.percentile(vals, [2.5, 97.5])
    return float(lo), float(hi)


def report(name: str, turns: list[Turn], emb: Embedder, n_boot: int) -> list[str]:
    res = ranks(turns, emb)
    n, dlg = res["labels"], res["dialogues"]
    chance_mrr = float(np.mean([1 / k for k in range(1, n + 1)]))
    lines = [
        f"### {name}: {len(np.unique(dlg))} dialogues, {len(turns)} user turns, {n} labels",
        "",
        "| ranker | MRR [95% CI] | recall@1 | recall@3 |",
        "|---|---|---|---|",
    ]
    for k, r in res["ranks"].items():
        m = _metrics(r, n)
        lo, hi = _boot(dlg, lambda idx, r=r: float(np.mean(1 / r[idx])), n_boot)
        lines.append(f"| {k} | {m['mrr']:.3f} [{lo:.3f}, {hi:.3f}] | {m['r1']:.3f} | {m['r3']:.3f} |")
    lines.append(f"| chance | {chance_mrr:.3f} | {1 / n:.3f} | {min(1.0, 3 / n):.3f} |")
    p, q = res["ranks"]["provenance"], res["ranks"]["popularity"]
    e = res["ranks"]["embedding"]
    for other, rr in (("popularity", q), ("embedding", e)):
        diff = float(np.mean(1 / p) - np.mean(1 / rr))
        lo, hi = _boot(dlg, lambda idx, rr=rr: float(np.mean(1 / p[idx]) - np.mean(1 / rr[idx])), n_boot)
        lines.append(f"\nprovenance - {other}, MRR: {diff:+.3f} [{lo:+.3f}, {hi:+.3f}]")
    lines += ["", "Provenance shortlists (K = 50 shown at most; here every label fits in K):", ""]
    lines += ["| threshold | min_candidates | falls back to the K best | one candidate | mean size | gold on it |"]
    lines += ["|---|---|---|---|---|---|"]
    gold = [turns[i][3] for i in range(len(turns))]
    labels = sorted({t[3] for t in turns})
    gi = np.array([labels.index(g) for g in gold])
    for thr in (0.3, 0.4, 0.5, 0.6, 0.7):
        for mc in (1, 5):
            sizes, fall, one, hit = [], 0, 0, 0
            for i, s in enumerate(res["prov"]):
                order = np.argsort(-s, kind="stable")
                clear = int(np.count_nonzero(s >= thr))
                if mc == 1 and clear == 0:  # the old rule: none clears -> the K best
                    short = order[: min(50, int(np.isfinite(s).sum()))]
                    fall += 1
                else:
                    short = order[: max(clear, min(mc, int(np.isfinite(s).sum())))]
                one += len(short) == 1
                sizes.append(len(short))
                hit += gi[i] in short
            k = len(turns)
            lines.append(
                f"| {thr} | {mc} | {fall / k:.3f} | {one / k:.3f} | {np.mean(sizes):.1f} | {hit / k:.3f} |"
            )
    return lines + [""]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--boot", type=int, default=1000)
    args = ap.parse_args()
    emb = Embedder()
    sgd = sgd_turns(sorted((ROOT / "data/sgd/train").glob("dialogues_*.json")))
    woz = convlab_turns(ROOT / "data/convlab3/multiwoz21_dummy_data.json")
    lines = ["## Strategy rankers on real labels (`python benchmarks/ranker_recall.py`)", ""]
    lines += report("SGD (Schema-Guided Dialogue, user dialogue acts)", sgd, emb, args.boot)
    lines += report("MultiWOZ 2.1 (ConvLab-3 sample, unified user intents)", woz, emb, args.boot)
    top = Counter(t[3] for t in sgd).most_common(3)
    lines.append(f"Most frequent SGD labels: {', '.join(f'{k} ({v})' for k, v in top)}.")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
