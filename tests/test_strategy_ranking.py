"""Strategy-mode ranking: one embedding per turn, whatever the number of retries."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from dialforge.simulate.simulators import ConvState, StrategyUser


class _CountingBatcher:
    def __init__(self, vectors: dict[str, np.ndarray]) -> None:
        self.vectors = vectors
        self.calls: list[str] = []

    async def embed(self, text: str) -> np.ndarray:
        self.calls.append(text)
        return self.vectors[text]


def _user(
    batcher: _CountingBatcher, centroids: np.ndarray, threshold: float, candidates: int = 2, floor: int = 1
) -> StrategyUser:
    sim = StrategyUser.__new__(StrategyUser)  # the ranking parts only: no library file, no model
    sim.ranker = "embedding"
    sim.centroids = centroids
    sim.threshold = threshold
    sim.cfg = SimpleNamespace(candidates=candidates, min_candidates=floor)  # type: ignore[assignment]
    sim.batcher = batcher  # type: ignore[assignment]
    return sim


def test_retries_of_one_turn_reuse_the_answer_embedding_and_rank_above_the_threshold():
    centroids = np.eye(4, dtype=np.float32)
    first, second = np.array([0.9, 0.8, 0.1, 0.0], np.float32), np.array([0.0, 0.1, 0.2, 0.95], np.float32)
    batcher = _CountingBatcher({"answer one": first, "answer two": second})
    sim = _user(batcher, centroids, threshold=0.5)
    state = ConvState(conv_id="0" * 16, messages=[{"role": "assistant", "content": "answer one", "meta": {}}], sample=0)

    picks = [asyncio.run(sim.candidates(state, attempt)) for attempt in range(3)]
    assert batcher.calls == ["answer one"]  # three attempts, one embedding
    assert all(sorted(p) == [0, 1] for p in picks)  # exactly the strategies scoring >= 0.5

    state.messages += [
        {"role": "user", "content": "q", "meta": {}},
        {"role": "assistant", "content": "answer two", "meta": {}},
    ]
    state.user_turns = 1
    assert asyncio.run(sim.candidates(state, 0)) == [3]  # one above the threshold
    assert batcher.calls == ["answer one", "answer two"]

    sim.threshold = 2.0  # none clears it: the floor's best (min_candidates 1: the best one)
    assert asyncio.run(sim.candidates(state, 1)) == [3]


def test_the_shortlist_holds_at_least_min_candidates_of_the_best():
    """benchmarks/ranker_recall.py: with a floor of 5, no answer leaves one strategy alone
    and none falls back to K at random (SGD, threshold 0.5: gold on the list 0.78 -> 0.89)."""
    from dialforge.simulate.config import StrategyConfig

    assert StrategyConfig(library="lib.json").min_candidates == 5
    centroids = np.eye(8, dtype=np.float32)
    v = np.array([0.9, 0.45, 0.4, 0.3, 0.2, 0.1, 0.05, 0.0], np.float32)
    sim = _user(_CountingBatcher({"a": v}), centroids, threshold=0.5, candidates=50, floor=3)
    state = ConvState(conv_id="1" * 16, messages=[{"role": "assistant", "content": "a", "meta": {}}], sample=0)
    assert sorted(asyncio.run(sim.candidates(state, 0))) == [0, 1, 2]  # one clears: the 3 best
    sim.threshold = 0.25
    assert sorted(asyncio.run(sim.candidates(state, 0))) == [0, 1, 2, 3]  # four clear: all four
    sim.threshold = 2.0
    assert sorted(asyncio.run(sim.candidates(state, 0))) == [0, 1, 2]  # none clears: the 3 best, not 50


def test_strict_schema_is_built_once_per_model_and_each_caller_gets_a_copy(monkeypatch):
    from dialforge.llm import structured
    from dialforge.simulate.simulators import Verdict

    structured._strict_schema_json.cache_clear()
    built = []
    original = Verdict.model_json_schema
    monkeypatch.setattr(Verdict, "model_json_schema", lambda *a, **k: built.append(1) or original(*a, **k))
    a = structured.strict_schema(Verdict)
    a["properties"]["result"]["enum"].append("maybe")  # a caller mutating its schema
    b = structured.strict_schema(Verdict)
    assert len(built) == 1
    assert b["properties"]["result"]["enum"] == ["yes", "no"] and b["additionalProperties"] is False
    assert b["required"] == ["analysis", "result"]


def test_the_strategy_example_uses_its_rankers_own_threshold():
    from dialforge.config import load_config
    from dialforge.simulate.config import DEFAULT_THRESHOLDS, SimulateConfig

    root = Path(__file__).resolve().parents[1]
    cfg = load_config(SimulateConfig, root / "examples/strategy.yaml")
    assert cfg.strategy is not None
    assert cfg.strategy.threshold == DEFAULT_THRESHOLDS[cfg.strategy.ranker] == 0.5
    assert cfg.strategy.min_candidates == 5


def test_provenance_beats_popularity_and_chance_on_real_sgd_labels():
    """benchmarks/ranker_recall.py on SGD's real user dialogue acts, leave one dialogue out."""
    import importlib.util

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("ranker_recall", root / "benchmarks/ranker_recall.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    from dialforge.induce.embed import Embedder

    turns = bench.sgd_turns(sorted((root / "data/sgd/train").glob("dialogues_*.json")))
    res = bench.ranks(turns, Embedder())
    assert (len(turns), res["labels"], len(set(res["dialogues"].tolist()))) == (127, 19, 15)
    mrr = {k: round(float(np.mean(1 / r)), 3) for k, r in res["ranks"].items()}
    assert mrr == {"provenance": 0.658, "embedding": 0.359, "popularity": 0.356}
    p, q = res["ranks"]["provenance"], res["ranks"]["popularity"]
    lo, _ = bench._boot(res["dialogues"], lambda idx: float(np.mean(1 / p[idx]) - np.mean(1 / q[idx])), 300)
    assert lo > 0.2  # provenance above popularity across dialogues, not by luck
