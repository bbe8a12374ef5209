"""Perplexity of real users' turns under an in-process simulator and under its base model.

The text is rendered exactly as the simulator was trained (`train/render.py`): roles swapped
so the user's turns are the model's own, the simulator's chat template, and the loss mask that
covers user-turn tokens plus their end-of-turn token only. Both models read the same token ids
(the simulator's tokenizer and template), so the two perplexities differ only by the weights:
the effect of training.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..conversation import Conversation
from ..errors import DialforgeError
from ..train.render import IGNORE, RoleRenderer, swap_for_simulator
from .card import Perplexity


def base_model_of(simulator: str | Path) -> str | None:
    """The base model a `dialforge train simulator` output was trained from (train_summary.json)."""
    p = Path(simulator)
    for summary in (p / "train_summary.json", p.parent / "train_summary.json"):
        if summary.exists():
            model = json.loads(summary.read_text()).get("config", {}).get("model")
            return str(model) if model else None
    return None


def _load_tokenizer(path: str) -> Any:
    from transformers import AutoTokenizer

    from ..llm.config import resolve_model

    try:
        return AutoTokenizer.from_pretrained(resolve_model(path))
    except (OSError, ValueError) as e:
        raise DialforgeError(f"cannot load tokenizer of {path!r}: {str(e).splitlines()[0]}") from None


def _load_model(path: str) -> Any:
    from transformers import AutoModelForCausalLM

    from ..llm.config import resolve_model

    try:
        model = AutoModelForCausalLM.from_pretrained(resolve_model(path))
    except (OSError, ValueError) as e:
        raise DialforgeError(f"cannot load model {path!r}: {str(e).splitlines()[0]}") from None
    model.eval()
    return model


def render_user_turns(
    convs: Sequence[Conversation], tokenizer: Any, template: str, max_length: int
) -> list[tuple[list[int], list[int]]]:
    """(input_ids, labels) per conversation with the simulator's training mask."""
    renderer = RoleRenderer(tokenizer, template, ("assistant",), max_length=max_length)
    out = []
    for c in convs:
        rows = [{"role": m.role, "content": m.content} for m in c.messages if m.role != "tool"]
        ex = renderer.render(swap_for_simulator(rows))
        if ex is not None:
            out.append((ex.input_ids, ex.labels))
    return out


def masked_nll(model: Any, examples: Sequence[tuple[list[int], list[int]]]) -> tuple[float, int]:
    """Summed next-token negative log-likelihood over labelled tokens, and their count."""
    import torch

    vocab = model.get_input_embeddings().num_embeddings
    total, count = 0.0, 0
    with torch.no_grad():
        for ids, labels in examples:
            if max(ids) >= vocab:
                raise DialforgeError("the base model's vocabulary does not cover the simulator's tokenizer")
            x = torch.tensor([ids])
            y = torch.tensor(labels[1:])
            logits = model(input_ids=x).logits[0, :-1].float()
            keep = y != IGNORE
            if keep.any():
                nll = torch.nn.functional.cross_entropy(logits[keep], y[keep], reduction="sum")
                total += float(nll)
                count += int(keep.sum())
    return total, count


def perplexity_figure(
    simulator: str,
    convs: Sequence[Conversation],
    *,
    base: str | None = None,
    template: str | None = None,
    max_conversations: int = 200,
    max_length: int = 1024,
) -> Perplexity:
    """Perplexity of `convs`' user turns under `simulator` and (if known) its base model."""
    from ..train.templates import get_template

    tok = _load_tokenizer(simulator)
    tpl = get_template(template or "auto", tok) if (template or getattr(tok, "chat_template", None)) else None
    if tpl is None:
        tpl = get_template("dyadic", tok)
    examples = render_user_turns(list(convs)[:max_conversations], tok, tpl, max_length)
    if not examples:
        raise DialforgeError("perplexity: no REAL conversation has a user turn that fits the simulator's template")
    base = base or base_model_of(simulator)
    sim_nll, n = masked_nll(_load_model(simulator), examples)
    base_ppl = None
    if base:
        base_nll, _ = masked_nll(_load_model(base), examples)
        base_ppl = math.exp(base_nll / n)
    return Perplexity(
        simulator=simulator,
        base=base,
        template=template or "simulator's own",
        conversations=len(examples),
        tokens=n,
        simulator_ppl=math.exp(sim_nll / n),
        base_ppl=base_ppl,
    )
