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


def metaspace_tokenizer(corpus, bos="<s>", eos="</s>", specials=(), template=None):
    """A SentencePiece-style (Metaspace, BPE) tokenizer, as Llama/Mistral tokenizers are."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="first")
    alphabet = sorted({ch for t in corpus for ch in t} | set("\n:|_<>/ ") | {"\u2581"})
    specials = ["<unk>", "<pad>", bos, eos, *specials]
    tok.train_from_iterator(
        corpus, trainers.BpeTrainer(vocab_size=800, special_tokens=specials, initial_alphabet=alphabet)
    )
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos,
        eos_token=eos,
        pad_token="<pad>",
        unk_token="<unk>",
        additional_special_tokens=list(specials[4:]),
    )
    hf.chat_template = template
    return hf


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
        "vicuna": (
            build_tokenizer(
                corpus, vocab_size=600, bos="<s>", eos="</s>", special_tokens=[], chat_template=TEMPLATES["vicuna"]
            ),
            TEMPLATES["vicuna"],
            "</s>",
        ),
        "dyadic": (
            build_tokenizer(
                corpus, vocab_size=600, bos="<s>", eos="</s>", special_tokens=[], chat_template=TEMPLATES["dyadic"]
            ),
            TEMPLATES["dyadic"],
            "</s>",
        ),
    }


@pytest.fixture(scope="module")
def metaspace_families(corpus):
    out = {}
    for name in TEMPLATES:
        specials: tuple[str, ...] = ()
        bos, eos = "<s>", "</s>"
        if name == "chatml":
            specials, eos = ("<|im_start|>",), "<|im_end|>"
        if name == "llama3":
            bos, eos, specials = "<|begin_of_text|>", "<|eot_id|>", ("<|start_header_id|>", "<|end_header_id|>")
        out[name] = metaspace_tokenizer(corpus, bos, eos, specials, TEMPLATES[name])
    return out


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


@pytest.mark.parametrize("family", ["chatml", "llama3", "vicuna", "dyadic"])
def test_masks_exact_for_each_family(families, family):
    tok, tpl, end = families[family]
    # PlatoLM's template also trains the <s> that opens each trained utterance
    opening = "<s>" if family == "dyadic" else ""
    r = RoleRenderer(tok, tpl, ["assistant"], train_open_token=family == "dyadic")
    ex = r.encode(CONV)
    assert spans(tok, ex) == [opening + CONV[2]["content"] + end, opening + CONV[4]["content"] + end]
    # the rendered ids are the chat template's text
    assert tok.decode(ex.input_ids) == tok.apply_chat_template(CONV, chat_template=tpl, tokenize=False)
    uend = "" if family == "vicuna" else end  # Vicuna closes only assistant turns with </s>
    r = RoleRenderer(tok, tpl, ["user"])
    assert spans(tok, r.encode(CONV)) == [CONV[1]["content"] + uend, CONV[3]["content"] + uend]
    r = RoleRenderer(tok, tpl, ["user", "assistant"])
    if family == "vicuna":  # a user turn runs into the next assistant header, untrained
        assert spans(tok, r.encode(CONV)) == [CONV[i]["content"] + (end if i % 2 == 0 else "") for i in (1, 2, 3, 4)]
    else:
        assert spans(tok, r.encode(CONV)) == [CONV[i]["content"] + end for i in (1, 2, 3, 4)]
    r = RoleRenderer(tok, tpl, ["assistant"], last_turn_only=True)
    assert spans(tok, r.encode(CONV)) == [CONV[4]["content"] + end]


def test_dyadic_is_platolm_template(families):
    """reference/platolm.md §1.2-1.3: Human/Assistant, <s>...</s> per utterance, no separator,
    the system prompt first; the simulator is trained on Human turns with <s>, text, </s>."""
    from dialforge.train.templates import PLATOLM_SIMULATOR_SYSTEM

    tok, tpl, _ = families["dyadic"]
    conv = [{"role": "system", "content": PLATOLM_SIMULATOR_SYSTEM}, *CONV[1:]]
    text = tok.apply_chat_template(conv, chat_template=tpl, tokenize=False)
    assert text == (
        f"<s>{PLATOLM_SIMULATOR_SYSTEM}\n\nHuman: <s>{CONV[1]['content']}</s>Assistant: <s>{CONV[2]['content']}</s>"
        f"Human: <s>{CONV[3]['content']}</s>Assistant: <s>{CONV[4]['content']}</s>"
    )
    r = RoleRenderer(tok, tpl, ["user"], train_open_token=True)
    ex = r.encode(conv)
    assert spans(tok, ex) == [f"<s>{CONV[1]['content']}</s>", f"<s>{CONV[3]['content']}</s>"]
    # free mode: the prompt is the system prompt and an open Human turn
    assert tok.decode(r.prompt_ids(conv[:1], "user")) == f"<s>{PLATOLM_SIMULATOR_SYSTEM}\n\nHuman: <s>"


def _check_identity(tok, tpl, roles, conv, open_token=False):
    r = RoleRenderer(tok, tpl, roles, train_open_token=open_token)
    ex = r.encode(conv)
    text = tok.apply_chat_template(conv, chat_template=tpl, tokenize=False)
    assert tok.decode(ex.input_ids) == text  # no stray pieces (e.g. an extra "\u2581" before a content)
    n_prompts = 0
    for k, m in enumerate(conv):
        if m["role"] not in roles:
            continue
        prompt = r.prompt_ids(conv[:k], m["role"])
        assert ex.input_ids[: len(prompt)] == prompt, f"message {k}"
        # the first content token right after the prompt is trained: generation continues there
        assert ex.labels[len(prompt)] == ex.input_ids[len(prompt)]
        n_prompts += 1
    assert n_prompts >= 2


@pytest.mark.parametrize("family", ["chatml", "llama3", "vicuna", "dyadic"])
def test_inference_prompt_ids_are_training_prefix_bytelevel(families, family):
    tok, tpl, _ = families[family]
    _check_identity(tok, tpl, ["assistant"], CONV, family == "dyadic")
    _check_identity(tok, tpl, ["user"], CONV, family == "dyadic")
    _check_identity(tok, tpl, ["assistant"], swap_for_simulator(CONV))


@pytest.mark.parametrize("family", ["chatml", "llama3", "vicuna", "dyadic"])
def test_inference_prompt_ids_are_training_prefix_metaspace(metaspace_families, family):
    tok = metaspace_families[family]
    tpl = TEMPLATES[family]
    # with per-piece tokenisation a Metaspace tokenizer put "\u2581" before every content
    ids = RoleRenderer(tok, tpl, ["assistant"]).encode(CONV).input_ids
    assert tok.decode(ids) == tok.apply_chat_template(CONV, chat_template=tpl, tokenize=False)
    _check_identity(tok, tpl, ["assistant"], CONV, family == "dyadic")
    _check_identity(tok, tpl, ["user"], CONV, family == "dyadic")


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
