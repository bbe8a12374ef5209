"""Strategy-mode ranking: one embedding per turn, whatever the number of retries."""

from __future__ import annotations

import asyncio
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


def _user(batcher: _CountingBatcher, centroids: np.ndarray, threshold: float) -> StrategyUser:
    sim = StrategyUser.__new__(StrategyUser)  # the ranking parts only: no library file, no model
    sim.ranker = "embedding"
    sim.centroids = centroids
    sim.threshold = threshold
    sim.cfg = SimpleNamespace(candidates=2)  # type: ignore[assignment]
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

    sim.threshold = 2.0  # none clears it: the K best
    assert sorted(asyncio.run(sim.candidates(state, 1))) == [2, 3]


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
