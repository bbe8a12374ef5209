"""Training throughput: `dialforge train chat` against plain TRL SFT with
`assistant_only_loss` on the same tiny model, data, steps and batch size.

    python benchmarks/train_throughput.py [--steps 40] [--hidden 256] [--layers 4]

Both runs are full fine-tuning on CPU (or the GPU if there is one); tokens/s is TRL's
`num_tokens` (input tokens seen) over `train_runtime`. Each trainer runs twice, alternating,
and the better run counts, so start-up order does not decide the ratio.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from dialforge.io import read_conversations, write_conversations
from dialforge.tiny import build_tiny_model
from dialforge.train import TrainConfig, train

DATA = Path(__file__).resolve().parents[1] / "data"


def plain_trl(model_dir: str, convs: list, steps: int, batch: int, max_length: int, out: str) -> float:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tok = AutoTokenizer.from_pretrained(model_dir)
    ds = Dataset.from_list([{"messages": [{"role": m.role, "content": m.content} for m in c.messages]} for c in convs])
    args = SFTConfig(
        output_dir=out,
        max_steps=steps,
        per_device_train_batch_size=batch,
        learning_rate=1e-4,
        logging_steps=steps,
        save_strategy="no",
        report_to=[],
        max_length=max_length,
        assistant_only_loss=True,
        use_cpu=not torch.cuda.is_available(),
        disable_tqdm=True,
        bf16=torch.cuda.is_available(),
    )
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(model_dir), args=args, train_dataset=ds, processing_class=tok
    )
    res = trainer.train()
    tokens = [h["num_tokens"] for h in trainer.state.log_history if "num_tokens" in h][-1]
    return tokens / res.metrics["train_runtime"]


def ours(model_dir: str, data: str, steps: int, batch: int, max_length: int, out: str) -> float:
    s = train(
        TrainConfig(
            kind="chat",
            data=[data],
            model=model_dir,
            out=out,
            lora=False,
            max_steps=steps,
            batch_size=batch,
            learning_rate=1e-4,
            max_length=max_length,
            logging_steps=steps,
            save_steps=10**9,
            resume=False,
            bf16=torch.cuda.is_available(),
        )
    )
    return s["num_tokens"] / s["train_runtime_s"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--max-length", type=int, default=1024)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    texts = [json.loads(x) for x in (DATA / "oasst/prompt_lottery_en_250_text.jsonl").open()]
    model_dir = str(build_tiny_model(Path(tmp) / "model", texts, hidden_size=args.hidden, layers=args.layers))
    convs = read_conversations(DATA / "oasst/en_100_tree.jsonl", "oasst-best")
    data = str(Path(tmp) / "threads.jsonl")
    write_conversations(convs, data)
    results: dict[str, list[float]] = {"plain TRL (assistant_only_loss)": [], "dialforge train chat": []}
    for rnd in range(2):
        results["plain TRL (assistant_only_loss)"].append(
            plain_trl(model_dir, convs, args.steps, args.batch, args.max_length, f"{tmp}/trl{rnd}")
        )
        results["dialforge train chat"].append(
            ours(model_dir, data, args.steps, args.batch, args.max_length, f"{tmp}/ours{rnd}")
        )
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({torch.get_num_threads()} threads)"
    print(
        f"device: {device}; Llama {args.layers} layers x {args.hidden} hidden; {len(convs)} OASST threads; "
        f"{args.steps} steps x batch {args.batch}, max_length {args.max_length}; full fine-tuning"
    )
    print("| trainer | tokens/s (run 1, run 2) | best |")
    print("|---|---|---|")
    for name, v in results.items():
        print(f"| {name} | {v[0]:.0f}, {v[1]:.0f} | {max(v):.0f} |")
    ratio = max(results["dialforge train chat"]) / max(results["plain TRL (assistant_only_loss)"])
    print(f"ratio dialforge / plain TRL: {ratio:.2f}")


if __name__ == "__main__":
    main()
