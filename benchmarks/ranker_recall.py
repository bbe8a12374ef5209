"""Strategy rankers measured leave-one-dialogue-out: for each held-out dialogue, every turn's
preceding answer is ranked against the library built without that dialogue; we report
recall@10, recall@50 and the MRR of the strategy the turn was assigned to.

- planted: 120 synthetic strategies; the link is planted (a strategy's turns
  always follow answers of one synthetic family; descriptions do not mention the family);
- real: the 100 OASST trees in data/, induced with the scripted extractor used by the tests
  (strategies are a hash of the user turn, so no ranker can beat chance: a sanity floor).

Rankers as in `StrategyUser.scores`: provenance = max cosine between the answer and the
answers that preceded the strategy's turns (held-out dialogue removed); embedding = cosine
between the answer and the strategy centroid. The LLM ranker needs a real model (not run).

    python benchmarks/ranker_recall.py
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from dialforge.induce.embed import Embedder

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = [
    "bread baking", "car engines", "tax forms", "guitar chords", "tomato gardening", "chess openings",
    "bicycle repair", "sleep habits", "python lists", "marathon training", "coffee brewing", "dog training",
    "solar panels", "knitting patterns", "stock options", "volcano geology", "french verbs", "home insulation",
    "bird migration", "3d printing", "wine tasting", "first aid", "roman history", "email etiquette",
    "camera lenses", "yoga poses", "budget travel", "wedding speeches", "pond ecology", "spreadsheet formulas",
]  # fmt: skip


def evaluate(answers_emb: np.ndarray, turns: list[tuple[int, int, int]], n_strat: int, cents: np.ndarray) -> dict:
    """turns: (dialogue, answer row, gold strategy). Returns {ranker: (r@10, r@50, mrr)}."""
    ctx: dict[int, list[tuple[int, int]]] = defaultdict(list)  # strategy -> (dialogue, answer row)
    for d, a, s in turns:
        ctx[s].append((d, a))
    ranks: dict[str, list[int]] = {"provenance": [], "embedding": []}
    for d, a, gold in turns:
        v = answers_emb[a]
        sims = answers_emb @ v
        prov = np.full(n_strat, -1.0)
        for s, rows in ctx.items():
            keep = [r for dd, r in rows if dd != d]
            if keep:
                prov[s] = sims[keep].max()
        for name, score in (("provenance", prov), ("embedding", cents @ v)):
            ranks[name].append(1 + int((score > score[gold]).sum()))
    return {
        k: (np.mean([r <= 10 for r in v]), np.mean([r <= 50 for r in v]), np.mean([1 / r for r in v]))
        for k, v in ranks.items()
    }


def planted(emb: Embedder, dialogues: int = 300, turns: int = 3, seed: int = 0) -> tuple[dict, int, int]:
    rng = random.Random(seed)
    angles = ["for beginners", "on a tight budget", "for experts", "in a hurry"]
    families = [f"{f} {a}" for a in angles for f in FAMILIES]  # 120, overlapping in meaning
    n = len(families)
    strategies = [f"Synthetic strategy {i}: follow up on point number {i}" for i in range(n)]
    texts, rows = [], []
    for d in range(dialogues):
        for _ in range(turns):
            s = rng.randrange(n)
            words = FAMILIES[s % len(FAMILIES)].split()
            texts.append(
                f"Here is an overview of {families[s]}. The {words[-1]} matters most, "
                f"then the {rng.choice(['basics', 'details', 'costs', 'risks', 'tools'])} of {words[0]}."
            )
            rows.append((d, len(texts) - 1, s))
    return evaluate(emb.embed(texts), rows, n, emb.embed(strategies)), len(rows), n


def real(emb: Embedder) -> tuple[dict, int, int]:
    sys.path.insert(0, str(ROOT / "tests"))
    from test_induce import scripted_reply

    from dialforge.induce import InduceConfig, pipeline
    from dialforge.io import read_conversations
    from dialforge.llm import BackendPool, backend_config
    from dialforge.testing import ScriptedChatModel

    src = ROOT / "data/oasst/en_100_tree.jsonl"
    tree = {c.id: c.meta["message_tree_id"] for c in read_conversations(src, "oasst")}
    with tempfile.TemporaryDirectory() as tmp:
        backend = ScriptedChatModel(scripted_reply)
        cfg = InduceConfig(dialogues=[str(src)], format="oasst", model=backend_config(model="scripted"))
        lib = asyncio.run(
            pipeline.induce_async(cfg, Path(tmp) / "run", progress=False, pool=BackendPool({"scripted": backend}))
        )
        recs = [json.loads(x) for x in (Path(tmp) / "run/extracted.jsonl").read_text().splitlines()]
        assigned = {
            a["id"]: a["strategy_id"]
            for a in map(json.loads, (Path(tmp) / "run/assignments.jsonl").read_text().splitlines())
        }
    index = {s.id: i for i, s in enumerate(lib.strategies)}
    texts, rows, trees = [], [], {}
    for r in recs:
        if r["history"] and r["history"][-1]["role"] == "assistant":
            texts.append(r["history"][-1]["content"][:1200])
            d = trees.setdefault(tree[r["conversation_id"]], len(trees))
            rows.append((d, len(texts) - 1, index[assigned[r["id"]]]))
    return evaluate(emb.embed(texts), rows, len(index), lib.centroids()), len(rows), len(index)


def main() -> None:
    emb = Embedder()
    print("| set | turns | strategies | ranker | recall@10 | recall@50 | MRR |")
    print("|---|---|---|---|---|---|---|")
    for name, fn in (("planted", planted), ("real OASST, scripted extractor", real)):
        res, n_turns, n_strat = fn(emb)
        for ranker, (r10, r50, mrr) in res.items():
            print(f"| {name} | {n_turns} | {n_strat} | {ranker} | {r10:.2f} | {r50:.2f} | {mrr:.3f} |")


if __name__ == "__main__":
    main()
