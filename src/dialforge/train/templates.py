"""Named chat templates (Jinja, as HF tokenizers store them) and what a trainer needs to
know about each: whether a simulator is trained on swapped roles, whether the token that
opens a trained turn carries loss, and the default system prompts.

The same template is saved into a trained model's tokenizer and described in
`dialforge_template.json` beside it, so inference renders exactly the training template
(`train/prompting.py`). `dyadic` is PlatoLM's template (reference/platolm.md §1.2-1.3):

    <s>{SYSTEM}\\n\\nHuman: <s>{user}</s>Assistant: <s>{assistant}</s>...

roles `Human`/`Assistant`, each utterance wrapped in the tokenizer's BOS/EOS, no separator,
the tokenizer's BOS once at the start; a simulator is trained on the `Human` turns (no role
swap: the prompt ends at `Human: <s>` and the model writes the human's utterance), with loss
on the `<s>`, the utterance and the `</s>` of each trained turn.

A template can be overridden with a path to a `.jinja` file (`--template my.jinja`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import DialforgeError
from ..tiny import CHATML_TEMPLATE

LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{% if m['role'] == 'assistant' %}{% generation %}{{ m['content'] }}<|eot_id|>{% endgeneration %}"
    "{% else %}{{ m['content'] }}<|eot_id|>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)

VICUNA_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}{{ m['content'] }}\n\n"
    "{% elif m['role'] == 'user' %}USER: {{ m['content'] }}\n"
    "{% else %}ASSISTANT: {% generation %}{{ m['content'] }}{{ eos_token }}{% endgeneration %}\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}ASSISTANT: {% endif %}"
)

DYADIC_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}{{ m['content'] }}\n\n"
    "{% else %}{% if m['role'] == 'user' %}Human{% elif m['role'] == 'assistant' %}Assistant"
    "{% else %}unknown{% endif %}: {{ bos_token }}{{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}Assistant: {{ bos_token }}{% endif %}"
)

# reference/platolm.md §1.2, verbatim (the "dyadic" system prompt: the human may follow up
# or open a brand-new topic) and the assistant's prompt for the chat model.
PLATOLM_SIMULATOR_SYSTEM = (
    "A chat between a curious human and an artificial intelligence assistant. The human can ask "
    "further questions based on previous conversations, or he can directly ask brand new questions "
    "without any conversations as context."
)
PLATOLM_CHAT_SYSTEM = (
    "A chat between a curious human and an artificial intelligence assistant. The assistant gives "
    "helpful, detailed, and polite answers to the human's questions."
)


@dataclass(frozen=True)
class TemplateSpec:
    """A template plus how training and inference use it.

    `swap_for_simulator`: a simulator's own turns are rendered as the assistant role (the
    only role an ordinary chat template can generate into); False when the template names
    both parties itself (dyadic) and the simulator writes the real user role.
    `train_open_token`: the special token right before a trained utterance has loss too.
    """

    name: str
    jinja: str
    swap_for_simulator: bool = True
    train_open_token: bool = False
    simulator_system: str | None = None
    chat_system: str | None = None


TEMPLATE_SPECS = {
    "chatml": TemplateSpec("chatml", CHATML_TEMPLATE),
    "llama3": TemplateSpec("llama3", LLAMA3_TEMPLATE),
    "vicuna": TemplateSpec("vicuna", VICUNA_TEMPLATE),
    "dyadic": TemplateSpec(
        "dyadic",
        DYADIC_TEMPLATE,
        swap_for_simulator=False,
        train_open_token=True,
        simulator_system=PLATOLM_SIMULATOR_SYSTEM,
        chat_system=PLATOLM_CHAT_SYSTEM,
    ),
}
TEMPLATES = {name: spec.jinja for name, spec in TEMPLATE_SPECS.items()}


def get_spec(name: str | None, tokenizer: object) -> TemplateSpec:
    """`None`/"auto": the tokenizer's own template; a bundled name; or a `.jinja` file."""
    if name in (None, "auto"):
        tpl = getattr(tokenizer, "chat_template", None)
        if not tpl:
            raise DialforgeError(f"the tokenizer has no chat template: pass --template ({', '.join(TEMPLATES)})")
        known = [s for s in TEMPLATE_SPECS.values() if s.jinja == tpl]
        return known[0] if known else TemplateSpec("auto", str(tpl))
    if name in TEMPLATE_SPECS:
        return TEMPLATE_SPECS[name]
    if name.endswith(".jinja"):
        p = Path(name)
        if not p.is_file():
            raise DialforgeError(f"template file {name} does not exist")
        return TemplateSpec(p.stem, p.read_text(encoding="utf-8"))
    raise DialforgeError(f"unknown template {name!r} (expected auto, a .jinja file or one of {', '.join(TEMPLATES)})")


def get_template(name: str | None, tokenizer: object) -> str:
    return get_spec(name, tokenizer).jinja
