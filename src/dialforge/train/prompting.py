"""Inference prompts for a trained simulator, rendered exactly as in training.

`dialforge train` writes `dialforge_template.json` next to the trained model: the template,
whether the simulator was trained on swapped roles, the system prompt and the role it
writes. `SimulatorPrompt` reads it back, renders a dialogue (real roles: `user` is the human)
with the same `RoleRenderer`, and returns token ids that are a prefix of the training ids of
the same dialogue. The ids go to the in-process backend as they are, or to an HTTP server's
raw completions endpoint (`/v1/completions` with a token-id prompt: vLLM, SGLang, llama.cpp),
so no server-side chat template can differ from training.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from ..errors import DialforgeError
from .render import RoleRenderer, swap_for_simulator
from .templates import TemplateSpec, get_spec

log = logging.getLogger("dialforge.train")

META_FILE = "dialforge_template.json"


@dataclass(frozen=True)
class TrainedFormat:
    """How a trained model was rendered: enough to prompt it exactly as trained."""

    template: str
    name: str = "auto"
    swap: bool = True
    train_open_token: bool = False
    system: str | None = None
    kind: str = "simulator"

    @classmethod
    def for_training(cls, spec: TemplateSpec, kind: str, system: str | None) -> TrainedFormat:
        swap = spec.swap_for_simulator if kind == "simulator" else False
        return cls(spec.jinja, spec.name, swap, spec.train_open_token, system, kind)

    @property
    def writes(self) -> str:
        """The message role the model writes, in its rendered (possibly swapped) dialogue."""
        return "assistant" if (self.kind == "chat" or self.swap) else "user"

    def save(self, folder: str | Path) -> None:
        Path(folder, META_FILE).write_bytes(orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2))

    @classmethod
    def load(cls, folder: str | Path, tokenizer: Any) -> TrainedFormat:
        p = Path(folder, META_FILE)
        if p.is_file():
            try:
                return cls(**orjson.loads(p.read_bytes()))
            except (orjson.JSONDecodeError, TypeError) as e:
                raise DialforgeError(f"{p}: not a dialforge template description ({e})") from None
        # a simulator trained elsewhere: its own chat template, roles swapped
        spec = get_spec("auto", tokenizer)
        log.warning(
            "%s has no %s (not made by `dialforge train simulator`): prompting it as a user simulator "
            "with its own chat template (%s); for an instruct model use `user_format: prompted`",
            folder,
            META_FILE,
            spec.name,
        )
        return cls.for_training(spec, "simulator", None)


class SimulatorPrompt:
    """Token-id prompts for the next user turn of a trained simulator."""

    def __init__(self, model_dir: str | Path, system: str | None = None) -> None:
        from transformers import AutoTokenizer

        from ..llm.config import resolve_model

        model_dir = resolve_model(str(model_dir))  # an embedded model's name is its cached folder
        try:
            self.tok = AutoTokenizer.from_pretrained(str(model_dir))
        except (OSError, ValueError) as e:
            raise DialforgeError(
                f"cannot load the simulator's tokenizer {model_dir}: {str(e).splitlines()[0]} "
                "(`user_format: trained` prompts a simulator made by `dialforge train simulator` with "
                "its own tokenizer: served over HTTP, set `user_tokenizer:` to its training output; "
                "for an instruct model use `user_format: prompted`)"
            ) from None
        self.fmt = TrainedFormat.load(model_dir, self.tok)
        self.system = system if system is not None else self.fmt.system
        self.renderer = RoleRenderer(
            self.tok, self.fmt.template, [self.fmt.writes], False, None, self.fmt.train_open_token
        )

    def messages(self, dialogue: list[dict[str, str]], system: str | None = None) -> list[dict[str, str]]:
        """The dialogue (real roles) as the model saw it in training."""
        body = [{"role": m["role"], "content": m["content"]} for m in dialogue if m["role"] in ("user", "assistant")]
        if self.fmt.swap:
            body = swap_for_simulator(body)
        system = system if system is not None else self.system
        return ([{"role": "system", "content": system}] if system else []) + body

    def ids(self, dialogue: list[dict[str, str]], system: str | None = None) -> list[int]:
        """The training ids' prefix, carrying the rendered text too (a `TokenPrompt`): a server
        whose /v1/completions takes only a string (llama-cpp-python) gets exactly that text."""
        from ..llm.types import TokenPrompt

        messages = self.messages(dialogue, system)
        ids = self.renderer.prompt_ids(messages, self.fmt.writes)
        text, spans = self.renderer.layout([*messages, {"role": self.fmt.writes, "content": ""}])
        return TokenPrompt(ids, text[: spans[-1][0]])
