"""Strategy mode embeds the answers of many conversations in one call (issue 18)."""

from __future__ import annotations

import asyncio
import threading

import numpy as np

from dialforge.induce.batcher import EmbedBatcher


class CountingEmbedder:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.gate = threading.Event()

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.array([[float(len(t)), 1.0] for t in texts], dtype=np.float32)


def test_requests_in_one_tick_share_one_embedding_call():
    emb = CountingEmbedder()
    batcher = EmbedBatcher(emb)

    async def go():
        first = await asyncio.gather(*(batcher.embed("x" * i) for i in range(1, 41)))
        second = await asyncio.gather(*(batcher.embed("y" * i) for i in range(1, 4)))
        return first, second

    first, second = asyncio.run(go())
    assert [len(c) for c in emb.calls] == [40, 3]  # two ticks, two calls; never one call per answer
    assert [float(v[0]) for v in first] == [float(i) for i in range(1, 41)]  # each caller gets its own row
    assert [float(v[0]) for v in second] == [1.0, 2.0, 3.0]


def test_a_failing_batch_fails_its_callers_and_the_batcher_recovers():
    class Flaky(CountingEmbedder):
        def embed(self, texts):
            if not self.calls:
                self.calls.append(texts)
                raise RuntimeError("model fell over")
            return super().embed(texts)

    batcher = EmbedBatcher(Flaky())

    async def go():
        bad = await asyncio.gather(batcher.embed("a"), batcher.embed("b"), return_exceptions=True)
        good = await batcher.embed("abc")
        return bad, good

    bad, good = asyncio.run(go())
    assert all(isinstance(e, RuntimeError) for e in bad) and float(good[0]) == 3.0
