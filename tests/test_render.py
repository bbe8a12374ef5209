"""Loss masks, exactly, for three template families built here."""

from __future__ import annotations

import json

import pytest

from dialforge.tiny import build_tokenizer
from dialforge.train import IGNORE, TEMPLATES, RoleRenderer, swap_for_simulator
from dialforge.train.strategy_data import format_target, parse_target, strategy_conditioned


@pytest.fixture(scope="module")
def corpus(data_dir):
    return [json.loads(x) for x in (data_dir / "oasst/prompt_lottery_en_250_text.jsonl").open()]


@pytest.fixture(scope="module")
def families(corpus):
    return {
        "chatml": (build_tokenizer(corpus, vocab_size=600), TEMPLATES["chatml"], "<|im_end|>"),
        "llama3": (
            build_tokenizer(
                corpus,
                vocab_size=600,
                bos="<|begin_of_text|>",
                eos="<|eot_id|>",
                special_tokens=["<|start_header_id|>", "<|end_header_id|>"],
                chat_template=TEMPLATES["llama3"],
            ),
            TEMPLATES["llama3"],
            "<|eot_id|>",
        ),
        "dyadic": (
            build_tokenizer(
                corpus, vocab_size=600, bos="<s>", eos="</s>", special_tokens=[], chat_template=TEMPLATES["dyadic"]
            ),
            TEMPLATES["dyadic"],
            "</s>",
        ),
    }


def spans(tok, ex):
    """Decoded runs of consecutive labelled tokens."""
    out, cur = [], []
    for i, lab in zip(ex.input_ids, ex.labels, strict=True):
        if lab != IGNORE:
            assert lab == i
            cur.append(i)
        elif cur:
            out.append(tok.decode(cur))
            cur = []
    if cur:
        out.append(tok.decode(cur))
    return out


CONV = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Can you tell me about GLaDOS?"},
    {"role": "assistant", "content": "GLaDOS is the AI antagonist of the Portal games."},
    {"role": "user", "content": "why some poeple prefer short happiness ?"},
    {"role": "assistant", "content": "Short-term pleasure is immediate and certain."},
]


@pytest.mark.parametrize("family", ["chatml", "llama3", "dyadic"])
def test_masks_exact_for_each_family(families, family):
    tok, tpl, end = families[family]
    r = RoleRenderer(tok, tpl, ["assistant"])
    ex = r.encode(CONV)
    assert spans(tok, ex) == [CONV[2]["content"] + end, CONV[4]["content"] + end]
    # the rendered ids are the chat template's text
    assert tok.decode(ex.input_ids) == tok.apply_chat_template(CONV, chat_template=tpl, tokenize=False)
    r = RoleRenderer(tok, tpl, ["user"])
    assert spans(tok, r.encode(CONV)) == [CONV[1]["content"] + end, CONV[3]["content"] + end]
    r = RoleRenderer(tok, tpl, ["user", "assistant"])
    assert spans(tok, r.encode(CONV)) == [CONV[i]["content"] + end for i in (1, 2, 3, 4)]
    # header tokens are registered special tokens here, and still never trained
    assert any(t in tok.all_special_tokens for t in ("<|start_header_id|>", "<|im_start|>")) or family == "dyadic"
    r = RoleRenderer(tok, tpl, ["assistant"], last_turn_only=True)
    assert spans(tok, r.encode(CONV)) == [CONV[4]["content"] + end]


def test_simulator_masks_on_user_turns_with_dyadic_template(families):
    tok, tpl, end = families["dyadic"]
    sim = swap_for_simulator(CONV)
    ex = RoleRenderer(tok, tpl, ["assistant"]).encode(sim)
    # the simulator is trained on the real user turns, rendered after "USER: "
    assert spans(tok, ex) == [CONV[1]["content"] + end, CONV[3]["content"] + end]
    text = tok.decode(ex.input_ids)
    assert "USER: Can you tell me about GLaDOS?</s>" in text and "ASSISTANT: GLaDOS is" in text
    prompt = tok.apply_chat_template(sim[:2], chat_template=tpl, tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("ASSISTANT: GLaDOS is the AI antagonist of the Portal games.</s>\nUSER: ") is False
    prompt = tok.apply_chat_template(sim[:3], chat_template=tpl, tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("</s>\nUSER: ")


def test_truncation_drops_turns_from_start_keeps_system(families):
    tok, tpl, end = families["chatml"]
    full = RoleRenderer(tok, tpl, ["assistant"]).encode(CONV)
    r = RoleRenderer(tok, tpl, ["assistant"], max_length=len(full.input_ids) - 1)
    ex = r.render(CONV)
    assert spans(tok, ex) == [CONV[4]["content"] + end]
    text = tok.decode(ex.input_ids)
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant.") and "GLaDOS" not in text
    from dialforge.train import RenderStats

    stats = RenderStats()
    assert RoleRenderer(tok, tpl, ["assistant"], max_length=10).render(CONV, stats) is None
    assert stats.skipped_too_long == 1


def test_no_trainable_token_is_skipped_and_counted(families):
    from dialforge.train import RenderStats

    tok, tpl, _ = families["chatml"]
    stats = RenderStats()
    assert RoleRenderer(tok, tpl, ["assistant"]).render(CONV[:2], stats) is None
    assert stats.skipped_no_trainable == 1 and stats.examples == 0


def test_strategy_conditioned_examples():
    recs = [
        {
            "id": f"r{i}",
            "history": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
            "instruction": f"follow-up {i}",
            "strategy_text": f"strategy {i % 7}",
        }
        for i in range(20)
    ]
    pool = [f"strategy {i}" for i in range(7)]
    exs = strategy_conditioned(recs, pool, n_candidates=5, seed=3)
    again = strategy_conditioned(recs, pool, n_candidates=5, seed=3)
    assert exs == again
    for r, ex in zip(recs, exs, strict=True):
        cands = ex["meta"]["candidates"]
        assert len(cands) == 5 and cands[ex["meta"]["gold_index"]] == r["strategy_text"]
        assert f"{ex['meta']['gold_index'] + 1}. {r['strategy_text']}" in ex["messages"][0]["content"]
        assert parse_target(ex["messages"][-1]["content"]) == (r["strategy_text"], r["instruction"])
    assert len({tuple(e["meta"]["candidates"]) for e in exs}) > 1  # the order is shuffled
    assert format_target("s", "i") == "【instructional strategy】s【instruction】i"
