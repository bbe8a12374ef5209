"""PlatoLM as published: the dyadic template, free and seeded mode in-process and over a raw
completions endpoint, the same token ids in training and inference."""

from __future__ import annotations

import asyncio
import json

import pytest

from dialforge.llm import backend_config
from dialforge.llm.types import ChatRequest, SamplingParams
from dialforge.simulate import SimulateConfig, simulate_async
from dialforge.tiny import build_tokenizer
from dialforge.train.prompting import SimulatorPrompt, TrainedFormat
from dialforge.train.render import RoleRenderer
from dialforge.train.templates import PLATOLM_SIMULATOR_SYSTEM, TEMPLATE_SPECS


@pytest.fixture(scope="module")
def sim_dir(data_dir, tmp_path_factory):
    """What `dialforge train simulator --template dyadic` leaves for inference: the tokenizer
    with the template and dialforge_template.json (weights are not needed over HTTP)."""
    corpus = [json.loads(x) for x in (data_dir / "oasst/prompt_lottery_en_250_text.jsonl").open()]
    spec = TEMPLATE_SPECS["dyadic"]
    tok = build_tokenizer(corpus, vocab_size=600, bos="<s>", eos="</s>", special_tokens=[], chat_template=spec.jinja)
    out = tmp_path_factory.mktemp("sim") / "final"
    tok.save_pretrained(out)
    TrainedFormat.for_training(spec, "simulator", PLATOLM_SIMULATOR_SYSTEM).save(out)
    return out


def test_a_simulator_without_its_template_file_is_prompted_with_its_own_and_says_so(sim_dir, tmp_path, caplog):
    """`user_format: trained` on a model that `dialforge train simulator` did not make: its
    own chat template, as a simulator, and a warning (it used to fall back silently)."""
    import shutil

    bare = tmp_path / "bare"
    shutil.copytree(sim_dir, bare)
    (bare / "dialforge_template.json").unlink()
    with caplog.at_level("WARNING", logger="dialforge.train"):
        prompt = SimulatorPrompt(bare)
    assert (prompt.fmt.name, prompt.fmt.kind) == ("dyadic", "simulator")
    assert f"{bare} has no dialforge_template.json" in caplog.text and "(dyadic)" in caplog.text
    caplog.clear()
    SimulatorPrompt(sim_dir)
    assert "dialforge_template.json" not in caplog.text


@pytest.mark.slow
def test_trained_simulator_over_http_sends_training_ids(sim_dir, fake_server, tmp_path):
    cfg = SimulateConfig(
        mode="socratic",
        user_format="trained",
        user_tokenizer=str(sim_dir),
        seeds={"free": 3, "questions": []},
        user=backend_config(model="socratic-7b", base_url=fake_server.base_url, max_retries=0),
        assistant=backend_config(model="gpt", base_url=fake_server.base_url, max_retries=0),
        max_turns=2,
        stop={"role_flip": False, "repeat_similarity": 1.0},
    )
    asyncio.run(simulate_async(cfg, tmp_path / "run", progress=False))
    rows = [json.loads(x) for x in (tmp_path / "run/conversations.jsonl").read_text().splitlines()]
    assert len(rows) == 3
    for r in rows:
        assert r["meta"]["termination_reason"] != "error", r["meta"]
        assert len(r["messages"]) >= 2 and r["messages"][0]["role"] == "user"
    raw = [b for b in fake_server.requests if "prompt" in b]
    chat = [b for b in fake_server.requests if "messages" in b]
    assert raw and chat and all(b["model"] == "socratic-7b" for b in raw)
    prompt = SimulatorPrompt(sim_dir)
    opening = prompt.ids([])
    assert prompt.tok.decode(opening) == f"<s>{PLATOLM_SIMULATOR_SYSTEM}\n\nHuman: <s>"
    assert sum(b["prompt"] == opening for b in raw) == 3  # free mode: system prompt + "Human: <s>"
    # a follow-up prompt is the training ids of the dialogue so far, up to the open Human turn
    conv = rows[0]["messages"]
    dialogue = [{"role": m["role"], "content": m["content"]} for m in conv[:2]]
    follow = prompt.ids(dialogue)
    assert follow in [b["prompt"] for b in raw]
    renderer = RoleRenderer(prompt.tok, TEMPLATE_SPECS["dyadic"].jinja, ["user"], train_open_token=True)
    full = renderer.encode([*prompt.messages(dialogue), {"role": "user", "content": "And then?"}])
    assert full.input_ids[: len(follow)] == follow


def test_one_failing_request_fails_only_itself(tiny_model_dir):
    from dialforge.llm.local import TransformersBackend

    backend = TransformersBackend(str(tiny_model_dir), batch_size=8)
    params = SamplingParams(max_tokens=4, temperature=0)
    good = [ChatRequest([{"role": "user", "content": f"hello {i}"}], params) for i in range(3)]
    bad = ChatRequest([], params)  # the chat template cannot render an empty conversation

    async def go():
        try:
            return await backend.chat([good[0], bad, good[1], good[2]])
        finally:
            await backend.aclose()

    comps = asyncio.run(go())
    assert [c.ok for c in comps] == [True, False, True, True]
    assert comps[1].error


def test_local_backend_continues_raw_prompt_ids(tiny_model_dir):
    from transformers import AutoTokenizer

    from dialforge.llm.local import TransformersBackend

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    ids = tok("Human: hello", add_special_tokens=False)["input_ids"]
    backend = TransformersBackend(str(tiny_model_dir))
    params = SamplingParams(max_tokens=3, temperature=0)

    async def go():
        try:
            return await backend.chat([ChatRequest([], params, prompt=ids)])
        finally:
            await backend.aclose()

    (comp,) = asyncio.run(go())
    assert comp.ok and comp.usage.prompt_tokens == len(ids)
