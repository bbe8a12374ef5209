"""`dialforge train simulator|chat`: role-masked SFT on TRL's SFTTrainer, LoRA by default.

The renderer (not TRL) builds `input_ids` + `labels`; TRL receives the pre-tokenised rows
and leaves the labels as they are. The output directory `final/` holds a full model (LoRA
merged into a saved copy of the base) plus the tokenizer with the exact training template,
so it loads straight into the in-process backend and the `socratic` simulator.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import orjson

from ..errors import DialforgeError
from ..io.files import atomic_write_bytes
from ..io.reader import read_conversations
from ..llm.config import resolve_model
from .config import PRESETS as PRESETS  # the recipes, where they were
from .config import TrainConfig
from .prompting import TrainedFormat
from .render import RenderStats, RoleRenderer, swap_for_simulator
from .templates import TemplateSpec, get_spec

log = logging.getLogger("dialforge.train")


def _load_rows(cfg: TrainConfig) -> list[list[dict[str, str]]]:
    if cfg.strategy_conditioned:
        from .strategy_data import read_labelled, strategy_conditioned

        recs = read_labelled(cfg.data)
        pool = sorted({r["strategy_text"] for r in recs})
        return [ex["messages"] for ex in strategy_conditioned(recs, pool, cfg.candidates, cfg.seed)]
    rows = []
    for p in cfg.data:
        for c in read_conversations(p, on_error="skip"):
            rows.append([{"role": m.role, "content": m.content} for m in c.messages if m.role != "tool"])
    return rows


def training_format(cfg: TrainConfig, spec: TemplateSpec) -> TrainedFormat:
    """What inference needs to render prompts exactly as training did."""
    default = spec.simulator_system if cfg.kind == "simulator" else spec.chat_system
    system = None if cfg.strategy_conditioned else (cfg.system_prompt or default)
    return TrainedFormat.for_training(spec, cfg.kind, system)


def _trained_roles(cfg: TrainConfig, fmt: TrainedFormat) -> tuple[set[str], bool]:
    """(the roles that carry the loss, last turn only). A swapped simulator's turns are the
    "assistant" role after the swap."""
    if cfg.kind != "simulator":
        return set(cfg.roles or ["assistant"]), cfg.last_turn_only
    wanted = cfg.roles or ["user"]
    roles = {"assistant" if r == "user" else "user" for r in wanted} if fmt.swap else set(wanted)
    return roles, cfg.last_turn_only or cfg.strategy_conditioned


def build_examples(
    cfg: TrainConfig, tokenizer: Any, spec: TemplateSpec | str
) -> tuple[list[dict[str, list[int]]], RenderStats]:
    if isinstance(spec, str):
        spec = TemplateSpec("custom", spec)
    fmt = training_format(cfg, spec)
    rows = _load_rows(cfg)
    roles, last_only = _trained_roles(cfg, fmt)
    if cfg.kind == "simulator" and fmt.swap:
        rows = [swap_for_simulator(r) for r in rows]
    if fmt.system:
        rows = [r if r and r[0]["role"] == "system" else [{"role": "system", "content": fmt.system}, *r] for r in rows]
    renderer = RoleRenderer(tokenizer, spec.jinja, roles, last_only, cfg.max_length, spec.train_open_token)
    stats = RenderStats()
    out = []
    for r in rows:
        ex = renderer.render(r, stats)
        if ex is not None:
            out.append({"input_ids": ex.input_ids, "labels": ex.labels})
    if not out:
        raise DialforgeError(
            f"{', '.join(cfg.data)}: no example has a trainable token "
            f"({stats.skipped_no_trainable} without, {stats.skipped_too_long} too long)"
        )
    return out, stats


_WEIGHTS = ("model.safetensors", "adapter_model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")


def _checkpoint_problem(ckpt: Path) -> str | None:
    """Why a checkpoint cannot be resumed from (a kill mid-save leaves a partial folder), or None."""
    state = ckpt / "trainer_state.json"
    if not state.exists():
        return "no trainer_state.json"
    try:
        orjson.loads(state.read_bytes())
    except orjson.JSONDecodeError:
        return "trainer_state.json is cut short"
    if not any((ckpt / w).exists() for w in _WEIGHTS):
        return "no model weights"
    for f in sorted(ckpt.iterdir()):
        problem = _file_problem(f)
        if problem is not None:
            return f"{f.name} {problem}"
    return None


def _file_problem(f: Path) -> str | None:
    """Whether a checkpoint file a kill may have cut is whole, from its own framing: a
    safetensors header names its data's end; torch.save writes a zip, whose directory is
    at the end of the file. Cheap (headers only); other files pass."""
    import zipfile

    if not f.is_file():
        return None
    try:
        size = f.stat().st_size
        if f.suffix == ".safetensors":
            with f.open("rb") as fh:
                head = fh.read(8)
                if len(head) < 8:
                    return "is cut short"
                n = int.from_bytes(head, "little")
                if n > size - 8:
                    return "is cut short"
                header = orjson.loads(fh.read(n))
            ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
            return "is cut short" if 8 + n + max(ends, default=0) > size else None
        if f.suffix in (".pt", ".pth", ".bin"):
            return None if zipfile.is_zipfile(f) else "is cut short (not a whole torch.save archive)"
    except (OSError, ValueError, KeyError, TypeError, IndexError, orjson.JSONDecodeError):
        return "is unreadable"
    return None


def last_complete_checkpoint(out: Path) -> str | None:
    """The newest checkpoint that is whole; incomplete ones are skipped with a warning."""
    ckpts = [p for p in out.glob("checkpoint-*") if p.is_dir() and p.name.split("-", 1)[1].isdigit()]
    for ckpt in sorted(ckpts, key=lambda p: int(p.name.split("-", 1)[1]), reverse=True):
        problem = _checkpoint_problem(ckpt)
        if problem is None:
            return str(ckpt)
        log.warning("%s: skipping incomplete checkpoint (%s); resuming from an earlier one", ckpt, problem)
    return None


def check_train_extra() -> None:
    """`train` needs the optional `train` extra (trl, peft, accelerate): say so in one line.
    A package that is there but fails to import is left to raise its own error."""
    import importlib.util

    missing = [name for name in ("trl", "peft", "accelerate") if importlib.util.find_spec(name) is None]
    if missing:
        raise DialforgeError(
            f"dialforge train needs {', '.join(missing)}, which the base install leaves out: "
            "pip install 'dialforge[train]'"
        )


def train(cfg: TrainConfig) -> dict[str, Any]:
    check_train_extra()
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTTrainer

    out = Path(cfg.out)
    done = out / "train_summary.json"
    if cfg.resume and done.exists():
        prev = orjson.loads(done.read_bytes())
        if prev.get("config") == cfg.model_dump(mode="json"):
            log.info("%s: already trained with this config; nothing to do", out)
            return dict(prev)
    base = resolve_model(cfg.model)
    try:
        tok = AutoTokenizer.from_pretrained(base)
    except (OSError, ValueError) as e:
        raise DialforgeError(f"cannot load tokenizer of {cfg.model!r}: {str(e).splitlines()[0]}") from None
    if cfg.template == "auto" and cfg.kind == "simulator" and not getattr(tok, "chat_template", None):
        cfg = cfg.model_copy(update={"template": "dyadic"})
    spec = get_spec(cfg.template, tok)
    template = spec.jinja
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    examples, stats = build_examples(cfg, tok, spec)
    log.info(
        "%d examples (%d skipped without trainable tokens, %d too long, %d truncated)",
        stats.examples,
        stats.skipped_no_trainable,
        stats.skipped_too_long,
        stats.truncated,
    )
    model = AutoModelForCausalLM.from_pretrained(base)
    trainer = SFTTrainer(
        model=model,
        args=_sft_args(cfg, out),
        train_dataset=Dataset.from_list(examples),
        processing_class=tok,
        peft_config=_lora_config(cfg),
    )
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)  # keep stdout clean: losses go to train_summary.json
    trainer.remove_callback(ProgressCallback)
    last = last_complete_checkpoint(out) if cfg.resume else None
    t0 = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=last)
    wall = time.perf_counter() - t0
    final = out / "final"
    trained: Any = trainer.model
    if cfg.lora:
        trained.save_pretrained(out / "adapter")
        trained = trained.merge_and_unload()
    trained.save_pretrained(final)
    tok.chat_template = template
    tok.save_pretrained(final)
    training_format(cfg, spec).save(final)
    summary = _summary(cfg, stats, trainer, result, wall, last, final)
    atomic_write_bytes(out / "train_summary.json", orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    return summary


def _summary(
    cfg: TrainConfig, stats: RenderStats, trainer: Any, result: Any, wall: float, last: str | None, final: Path
) -> dict[str, Any]:
    """train_summary.json: the example counts, losses, timings and the config."""
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    tokens = [h["num_tokens"] for h in trainer.state.log_history if "num_tokens" in h]
    return {
        "examples": stats.examples,
        "skipped_no_trainable": stats.skipped_no_trainable,
        "skipped_too_long": stats.skipped_too_long,
        "truncated": stats.truncated,
        "trained_tokens": stats.trained_tokens,
        "steps": trainer.state.global_step,
        "train_loss": result.training_loss,
        "losses": losses,
        "learning_rates": [h["learning_rate"] for h in trainer.state.log_history if "learning_rate" in h],
        "wall_s": round(wall, 2),
        "train_runtime_s": result.metrics.get("train_runtime"),
        "num_tokens": tokens[-1] if tokens else None,
        "resumed_from": last,
        "final": str(final),
        "config": cfg.model_dump(mode="json"),
    }


def _lora_config(cfg: TrainConfig) -> Any:
    if not cfg.lora:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )


def _sft_args(cfg: TrainConfig, out: Path) -> Any:
    import torch
    from trl import SFTConfig

    bf16 = cfg.bf16 if cfg.bf16 is not None else bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return SFTConfig(
        output_dir=str(out),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        weight_decay=cfg.weight_decay,
        logging_steps=cfg.logging_steps,
        save_steps=cfg.save_steps,
        save_total_limit=2,
        seed=cfg.seed,
        report_to=[],
        max_length=cfg.max_length,
        packing=cfg.packing,
        bf16=bf16,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
