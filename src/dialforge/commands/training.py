"""`dialforge train`: role-masked fine-tuning from a TrainConfig."""

from __future__ import annotations

from pathlib import Path

from ..errors import DialforgeError
from ._spec import Arg, Call, Command, Group, Opt, Result


def _train(call: Call) -> Result:
    from ..train import train

    if call.kind not in ("simulator", "chat"):
        raise DialforgeError(f"train: kind must be simulator or chat, not {call.kind!r}")
    call.overrides["kind"] = call.kind
    cfg = call.load()
    summary = train(cfg)
    losses, mean = summary["losses"], summary.get("train_loss")
    if len(losses) > 1:
        loss = f"loss {losses[0]:.4f} -> {losses[-1]:.4f} (logged every {cfg.logging_steps} steps)"
    else:  # fewer steps than logging_steps: the trainer's mean is the one figure
        loss = f"mean loss {mean:.4f}" if isinstance(mean, (int, float)) else "no loss logged"
    return Result([f"{summary['final']}: {summary['examples']} examples, {summary['steps']} steps, {loss}"])


COMMANDS: list[Command | Group] = [
    Command(
        name="train",
        summary="Role-masked SFT (TRL + PEFT LoRA). Multi-GPU: `accelerate launch --config_file "
        "configs/accelerate/... -m dialforge.cli train ...`.",
        run=_train,
        config="dialforge.train:TrainConfig",
        args=(Arg("kind", str, "simulator (loss on user turns) or chat (loss on assistant turns)", required=True),),
        opts=(
            Opt("--data", "data", kind=list[Path]),
            Opt("--model", "model"),
            Opt("--out", "out", kind=Path),
            Opt("--template", "template"),
            Opt("--preset", "preset"),
            Opt("--full", "lora", value=False, help="full fine-tuning instead of LoRA"),
            Opt(
                "--packing/--no-packing",
                "packing",
            ),
            Opt("--strategy-conditioned", "strategy_conditioned", value=True),
            Opt("--epochs", "epochs"),
            Opt("--max-steps", "max_steps"),
            Opt("--lr", "learning_rate"),
            Opt("--batch-size", "batch_size"),
            Opt("--max-length", "max_length"),
        ),
        resumable=True,
        force_new=False,
    ),
]
