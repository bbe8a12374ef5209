"""An async micro-batcher in front of an `Embedder`: requests that arrive within one
event-loop tick (or while a batch is being embedded) are embedded together in one call.

Strategy mode ranks the last answer of every live conversation each turn; one model call
per answer under a lock serialised the whole engine (issue 18: 0.12 of ideal). Batching
the answers of many conversations keeps the embedder busy with few, large calls and never
blocks the event loop (the model runs in a worker thread).
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np


class EmbedBatcher:
    """`await embed(text)` -> one normalised vector; one batch in flight at a time."""

    live: list[EmbedBatcher] = []  # every batcher made in this process (benchmarks read counts)

    def __init__(self, embedder: Any, max_batch: int = 256) -> None:
        self.embedder = embedder
        self.max_batch = max_batch
        self._pending: list[tuple[str, asyncio.Future[np.ndarray]]] = []
        self._running = False
        self.batches = 0  # how many embedder calls (benchmarks and tests read it)
        self.texts = 0
        EmbedBatcher.live.append(self)

    async def embed(self, text: str) -> np.ndarray:
        fut: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self._pending.append((text, fut))
        if not self._running:
            self._running = True
            asyncio.get_running_loop().call_soon(self._start)
        return await fut

    def _start(self) -> None:
        asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
                texts = [t for t, _ in batch]
                try:
                    vecs = await asyncio.to_thread(self.embedder.embed, texts)
                except Exception as e:  # every waiter hears the failure; the batcher keeps working
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(e)
                    continue
                self.batches += 1
                self.texts += len(texts)
                for (_, fut), v in zip(batch, vecs, strict=True):
                    if not fut.done():
                        fut.set_result(v)
        finally:
            self._running = False
