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


def test_every_string_of_a_bounded_schema_has_room_for_a_sentence():
    from dialforge.llm import strict_schema
    from dialforge.llm.local import json_token_limit
    from dialforge.llm.structured import STRING_FLOOR, bound_schema, bounded_schema

    class Pick(BaseModel):
        strategy_number: int
        instruction: str

    class Verdict(BaseModel):
        analysis: str
        result: str

    assert STRING_FLOOR == 80
    # max_tokens 48 (the quickstart) gave the instruction 1 character; now the budget grows
    schema, chars = bounded_schema(strict_schema(Pick), 48)
    assert schema["properties"]["instruction"]["maxLength"] == 80
    assert schema["properties"]["instruction"]["minLength"] == 1  # never empty
    assert chars == 2 + 24 + (15 + 6) + (11 + 6) + (80 + 3) + 8 == 155
    assert json_token_limit(strict_schema(Pick), 48) == 2 * 155 + 16  # was 4 x 48 = 192 with 1 character
    # a large budget is shared, never below the floor; a schema's own smaller bound is kept
    big = bound_schema(strict_schema(Verdict), 512)["properties"]
    assert big["analysis"]["maxLength"] == big["result"]["maxLength"] == (512 - 2 - 14 - 12 - 8) // 2
    own = strict_schema(Verdict)
    own["properties"]["result"]["maxLength"] = 3
    assert bound_schema(own, 48)["properties"]["result"]["maxLength"] == 3
    # the 512-token default: the generation limit follows the schema, not 4 x max_tokens
    assert json_token_limit(strict_schema(Verdict), 512) < 4 * 512


def test_small_repairs_of_a_reply():
    from dialforge.llm import parse_structured

    assert parse_structured('{"analysis": "a", "strategy": "b",}', Strategy) == Strategy(analysis="a", strategy="b")
    assert parse_structured("Here: {'analysis': 'a', 'strategy': 'b'} done", Strategy).strategy == "b"
    with pytest.raises(ValueError, match="no JSON object"):  # cut short: the repair request's job
        parse_structured('{"analysis": "a", "strategy": ', Strategy)
    with pytest.raises(ValueError, match="invalid JSON"):
        parse_structured('{"analysis": "a" "strategy": "b"}', Strategy)


@pytest.mark.slow
def test_cpu_threads_default_to_one_and_follow_the_config(tiny_model_dir):
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        TransformersBackend(str(tiny_model_dir), device="cpu").load()
        assert torch.get_num_threads() == 1
        TransformersBackend(str(tiny_model_dir), device="cpu", threads=2).load()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.slow
def test_cancelling_stops_a_batch_at_the_next_token(tiny_model_dir):
    """Ctrl-C (the task cancelled) or aclose: generation stops within a token or so, not after
    the whole batch (it waited ~100 s on SmolLM2)."""
    import threading
    import time

    backend = TransformersBackend(str(tiny_model_dir), batch_size=4)
    backend.load()
    params = SamplingParams(max_tokens=3000, temperature=1.0, seed=3)
    reqs = [ChatRequest([{"role": "user", "content": f"Tell me a story {i}"}], params) for i in range(4)]
    flag = threading.Event()
    flag.set()  # already cancelled: at most one step
    t = time.perf_counter()
    comps = backend._generate(reqs, flag)
    assert time.perf_counter() - t < 5
    assert all(c.usage.completion_tokens <= 4 for c in comps)  # one token per row (n=1)

    async def go():
        task = asyncio.create_task(backend.chat(reqs))
        await asyncio.sleep(1.0)
        assert backend._live  # a batch is generating
        t0 = time.perf_counter()
        await backend.aclose()  # cancels the worker and sets the batch's flag
        task.cancel()
        return t0

    t0 = asyncio.run(go())  # asyncio.run waits for the generating thread before it returns
    assert time.perf_counter() - t0 < 3
