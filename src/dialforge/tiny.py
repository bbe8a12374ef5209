"""Build a tiny local chat model (trained BPE tokenizer + random Llama) for tests and the
offline demo. Its text is not meaningful; its shapes, templates and code paths are real."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['role'] == 'assistant' %}{% generation %}{{ m['content'] }}<|im_end|>{% endgeneration %}"
    "{% else %}{{ m['content'] }}<|im_end|>{% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = ["<pad>", "<s>", "<|im_start|>", "<|im_end|>"]


def build_tokenizer(
    texts: Iterable[str],
    *,
    vocab_size: int = 2048,
    special_tokens: list[str] | None = None,
    bos: str = "<s>",
    eos: str = "<|im_end|>",
    pad: str = "<pad>",
    chat_template: str = CHATML_TEMPLATE,
) -> Any:
    """A byte-level BPE tokenizer trained on `texts`, wrapped as a HF fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = list(dict.fromkeys([pad, bos, eos, *(special_tokens or SPECIAL_TOKENS)]))
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(list(texts), trainer)
    extra = [t for t in specials if t not in (pad, bos, eos)]
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=bos, eos_token=eos, pad_token=pad, additional_special_tokens=extra
    )
    hf_tok.chat_template = chat_template
    return hf_tok


def build_tiny_model(
    out_dir: str | Path,
    texts: Iterable[str],
    *,
    vocab_size: int = 2048,
    hidden_size: int = 64,
    layers: int = 2,
    seed: int = 0,
) -> Path:
    """Train a byte-level BPE tokenizer on `texts`, attach a ChatML template, save it with
    a randomly initialised `LlamaForCausalLM`. Returns the directory (loadable by
    `from_pretrained`)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = Path(out_dir)
    hf_tok = build_tokenizer(texts, vocab_size=vocab_size)
    cfg = LlamaConfig(
        vocab_size=len(hf_tok),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=hf_tok.bos_token_id,
        eos_token_id=hf_tok.eos_token_id,
        pad_token_id=hf_tok.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg)
    model.generation_config.pad_token_id = hf_tok.pad_token_id
    model.generation_config.eos_token_id = hf_tok.eos_token_id
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    hf_tok.save_pretrained(out)
    return out


TINY = "dialforge-tiny"


def uses_tiny(config: Any) -> bool:
    """Whether a config (a model or its JSON dump) has a role on the in-process tiny model."""
    if hasattr(config, "model_dump"):
        config = config.model_dump(mode="json")
    if isinstance(config, dict):
        if config.get("model") == TINY and config.get("kind") == "transformers":
            return True
        return any(uses_tiny(v) for v in config.values())
    return isinstance(config, list) and any(uses_tiny(v) for v in config)


def tiny_model_path() -> Path:
    """The offline demo model `dialforge-tiny`: built once (tokenizer trained on the bundled
    OASST prompts, random weights) and cached in the user cache directory (`cached_build`:
    concurrent first uses each build in a private folder; the first rename wins)."""
    from ._cachedir import cached_build

    return cached_build(
        "tiny-model-v1",
        lambda out: build_tiny_model(out, _demo_corpus(), vocab_size=2048, hidden_size=64, layers=2),
    )


def _demo_corpus() -> list[str]:
    import orjson

    name = "oasst/prompt_lottery_en_250_text.jsonl"
    here = Path(__file__).resolve().parent
    data = next((p for p in (here / "data" / name, here.parents[1] / "data" / name) if p.exists()), None)
    if data is not None:
        return [orjson.loads(x) for x in data.read_bytes().splitlines() if x.strip()]
    import string

    return [" ".join(string.ascii_lowercase[i:] + string.ascii_lowercase[:i] for i in range(26))] * 50
