"""The in-process transformers backend on a tiny model built here (no hub, no network)."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel

from dialforge import LLM, ChatRequest, SamplingParams
from dialforge.llm.local import TransformersBackend


class Strategy(BaseModel):
    analysis: str
    strategy: str


@pytest.mark.slow
def test_batched_generation(tiny_model_dir):
    backend = TransformersBackend(str(tiny_model_dir), batch_size=8)
    params = SamplingParams(max_tokens=12, temperature=0.8, seed=1, n=2)

    async def go():
        # concurrent callers are gathered into one batch by the worker
        reqs = [ChatRequest([{"role": "user", "content": f"Tell me about topic {i}"}], params) for i in range(5)]
        out = await asyncio.gather(*(backend.chat([r]) for r in reqs))
        await backend.aclose()
        return [c for (c,) in out]

    comps = asyncio.run(go())
    assert len(comps) == 5
    for c in comps:
        assert c.ok and len(c.texts) == 2
        assert 0 < c.usage.completion_tokens <= 24
        assert c.usage.prompt_tokens > 5
        assert c.finish_reasons[0] in ("stop", "length")


@pytest.mark.slow
def test_greedy_is_deterministic(tiny_model_dir):
    backend = TransformersBackend(str(tiny_model_dir))
    req = ChatRequest([{"role": "user", "content": "Hello there"}], SamplingParams(max_tokens=10, temperature=0))
    a = asyncio.run(backend.chat([req]))[0]
    b = asyncio.run(backend.chat([req]))[0]
    assert a.text == b.text


@pytest.mark.slow
def test_structured_output_parses_from_random_model(tiny_model_dir):
    llm = LLM(
        TransformersBackend(str(tiny_model_dir), batch_size=4),
        params=SamplingParams(max_tokens=160, temperature=1.0, seed=0),
    )

    async def go():
        res = await asyncio.gather(
            *(
                llm.structured(
                    [{"role": "user", "content": f"Why ask question {i}?"}], Strategy, sample_index=i, repair=False
                )
                for i in range(4)
            )
        )
        await llm.aclose()
        return res

    results = asyncio.run(go())
    # constrained decoding: every reply is valid JSON of the schema on the first try
    assert all(r.ok for r in results), [r.error for r in results]
    assert all(isinstance(r.value, Strategy) for r in results)


@pytest.mark.slow
def test_missing_model_is_a_clear_error(tmp_path):
    import pytest

    from dialforge.errors import DialforgeError

    backend = TransformersBackend(str(tmp_path / "nope"))
    with pytest.raises(DialforgeError, match="cannot load model"):
        backend.load()
