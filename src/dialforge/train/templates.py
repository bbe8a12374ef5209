"""Named chat templates (Jinja, as HF tokenizers store them).

The same string is saved into a trained model's tokenizer, so inference renders exactly
the training template. `dyadic` is the PlatoLM-style simulator template: the simulator's
own turns (role `assistant` after the role swap) are labelled `USER:`, the real assistant's
answers `ASSISTANT:`, and the generation prompt is `USER: `, so the rendered text reads like
the original human/AI dialogue while the model still "generates the assistant role".
"""

from __future__ import annotations

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
    "{% elif m['role'] == 'assistant' %}USER: {% generation %}{{ m['content'] }}{{ eos_token }}{% endgeneration %}\n"
    "{% else %}ASSISTANT: {{ m['content'] }}{{ eos_token }}\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}USER: {% endif %}"
)

TEMPLATES = {"chatml": CHATML_TEMPLATE, "llama3": LLAMA3_TEMPLATE, "vicuna": VICUNA_TEMPLATE, "dyadic": DYADIC_TEMPLATE}


def get_template(name: str | None, tokenizer: object) -> str:
    """`None`/"auto": the tokenizer's own template; else a named one."""
    if name in (None, "auto"):
        tpl = getattr(tokenizer, "chat_template", None)
        if not tpl:
            raise DialforgeError(f"the tokenizer has no chat template: pass --template ({', '.join(TEMPLATES)})")
        return str(tpl)
    if name not in TEMPLATES:
        raise DialforgeError(f"unknown template {name!r} (expected auto or one of {', '.join(TEMPLATES)})")
    return TEMPLATES[name]
