"""Real gradient steps on a tiny model and real OASST threads; train -> simulate end to end."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from dialforge.io import read_conversations, write_conversations
from dialforge.train import TrainConfig, train


@pytest.fixture(scope="module")
def threads(data_dir, tmp_path_factory):
    convs = read_conversations(data_dir / "oasst/en_100_tree.jsonl", "oasst-best")[:24]
    path = tmp_path_factory.mktemp("data") / "threads.jsonl"
    write_conversations(convs, path)
    return path


@pytest.mark.slow
def test_chat_lora_loss_goes_down_and_reloads(tiny_model_dir, threads, tmp_path):
    cfg = TrainConfig(
        kind="chat",
        data=[str(threads)],
        model=str(tiny_model_dir),
        out=str(tmp_path / "chat"),
        max_steps=30,
        learning_rate=2e-2,
        batch_size=4,
        max_length=512,
        logging_steps=5,
        save_steps=15,
        lora_r=8,
    )
    s = train(cfg)
    assert (s["examples"], s["skipped_too_long"], s["truncated"], s["steps"]) == (13, 11, 7, 30)
    # LoRA on a random 64-wide model learns slowly (its activations are tiny); it must still learn
    assert s["losses"][-1] < s["losses"][0]
    assert (tmp_path / "chat/adapter/adapter_config.json").exists()
    # the merged model and the adapter both load, and give the same logits
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    merged = AutoModelForCausalLM.from_pretrained(s["final"])
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    adapted = PeftModel.from_pretrained(base, str(tmp_path / "chat/adapter"))
    tok = AutoTokenizer.from_pretrained(s["final"])
    ids = tok("Hello there, how are you?", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, adapted(ids).logits, atol=1e-4)
    # a finished run is not trained again
    assert train(cfg) == s
    # a crash after step 15: the re-run resumes from the last checkpoint and ends at step 30
    import shutil

    for p in ("final", "checkpoint-30", "train_summary.json"):
        shutil.rmtree(tmp_path / "chat" / p) if (tmp_path / "chat" / p).is_dir() else (tmp_path / "chat" / p).unlink()
    s2 = train(cfg)
    assert s2["resumed_from"].endswith("checkpoint-15") and s2["steps"] == 30


@pytest.mark.slow
def test_train_simulator_then_simulate(tiny_model_dir, threads, tmp_path, data_dir):
    out = tmp_path / "sim"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "dialforge.cli",
            "train",
            "simulator",
            "--data",
            str(threads),
            "--model",
            str(tiny_model_dir),
            "--out",
            str(out),
            "--template",
            "dyadic",
            "--max-steps",
            "20",
            "--lr",
            "3e-3",
            "--batch-size",
            "4",
            "--max-length",
            "256",
            "--full",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["losses"][-1] < summary["losses"][0] * 0.95  # full fine-tuning: clearly down
    first, last = summary["losses"][0], summary["losses"][-1]
    assert f"20 steps, loss {first:.4f} -> {last:.4f} (logged every 10 steps)" in r.stderr
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(out / "final")
    assert "Human" in tok.chat_template  # the exact training template travels with the model
    fmt = json.loads((out / "final/dialforge_template.json").read_text())
    assert fmt["name"] == "dyadic" and fmt["swap"] is False and fmt["system"].startswith("A chat between a curious")
    from dialforge.llm import backend_config
    from dialforge.simulate import SimulateConfig, simulate_async

    cfg = SimulateConfig(
        mode="socratic",
        user_format="trained",
        seeds={"free": 2, "questions": [str(data_dir / "oasst/en_100_text.jsonl")], "limit": 2},
        # greedy: sampled text depends on which requests share a generate batch (timing), and a
        # tiny model sampled at T 1 sometimes opens with end-of-text (an empty free opening)
        user=backend_config(model=str(out / "final"), params={"max_tokens": 24, "temperature": 0.0}),
        assistant=backend_config(model=str(tiny_model_dir), params={"max_tokens": 24}),
        max_turns=3,
        stop={"role_flip": False, "repeat_similarity": 1.0},
    )
    summary = asyncio.run(simulate_async(cfg, tmp_path / "run", progress=False))
    assert summary["conversations"] == 4
    rows = [json.loads(x) for x in (tmp_path / "run/conversations.jsonl").read_text().splitlines()]
    assert {r["meta"]["simulator_model"] for r in rows} == {str(out / "final")}
    # free conversations were opened by the trained simulator itself: a question and an answer
    # at least, and no error (an empty conversation is a failure, not a free one)
    assert not [r["meta"].get("error") for r in rows if r["meta"]["termination_reason"] == "error"]
    free = [r for r in rows if r["messages"] and not r["messages"][0].get("meta", {}).get("seed")]
    assert len(free) == 2
    for r in free:
        assert len(r["messages"]) >= 2 and r["messages"][0]["role"] == "user" and r["messages"][0]["content"]


@pytest.mark.slow
def test_bad_train_inputs(tmp_path, tiny_model_dir):
    p = tmp_path / "one.jsonl"
    p.write_text('{"messages":[{"role":"user","content":"only a question"}]}\n')
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "dialforge.cli",
            "train",
            "chat",
            "--data",
            str(p),
            "--model",
            str(tiny_model_dir),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "no example has a trainable token" in r.stderr


def test_train_without_the_train_extra_says_what_to_install(tmp_path):
    """The base install has no trl/peft: one line naming the extra, exit 2, no traceback."""
    p = tmp_path / "d.jsonl"
    p.write_text('{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}]}\n')
    gone = "sys.modules['trl'] = sys.modules['peft'] = sys.modules['accelerate'] = None"
    hide = f"import sys; {gone}; from dialforge.cli import main; main()"
    args = ["train", "chat", "--data", str(p), "--model", "m", "--out", str(tmp_path / "o")]
    r = subprocess.run([sys.executable, "-c", hide, *args], capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    assert (
        r.stderr == "error: dialforge train needs trl, peft, accelerate, which the base install leaves out: "
        "pip install 'dialforge[train]'\n"
    )


@pytest.mark.slow
def test_resume_skips_an_incomplete_checkpoint(tiny_model_dir, threads, tmp_path, caplog):
    """A kill mid-save leaves a checkpoint without trainer_state.json: resume warns and takes
    the newest whole one instead of failing on every re-run."""
    import logging

    from dialforge.train.trainer import last_complete_checkpoint

    data = tmp_path / "d.jsonl"
    data.write_text(
        "".join(
            json.dumps({"messages": [{"role": "user", "content": f"q {i}"}, {"role": "assistant", "content": "a b"}]})
            + "\n"
            for i in range(4)
        )
    )
    out = tmp_path / "t"
    base = dict(kind="chat", data=[str(data)], model=str(tiny_model_dir), out=str(out), lora=False, batch_size=2)
    train(TrainConfig(**base, max_steps=2, save_steps=1))
    assert last_complete_checkpoint(out) == str(out / "checkpoint-2")
    (out / "checkpoint-2" / "trainer_state.json").unlink()  # as if killed while saving
    (out / "checkpoint-7").mkdir()  # an empty folder from a crash
    (out / "checkpoint-x").mkdir()  # not ours
    with caplog.at_level(logging.WARNING, logger="dialforge.train"):
        s = train(TrainConfig(**base, max_steps=3, save_steps=1))
    assert s["resumed_from"] == str(out / "checkpoint-1") and s["steps"] == 3
    warned = [r.getMessage() for r in caplog.records if "incomplete checkpoint" in r.getMessage()]
    assert any("checkpoint-2" in w and "no trainer_state.json" in w for w in warned)
    assert any("checkpoint-7" in w for w in warned)


def test_presets_fill_unset_fields_and_reach_the_trainer(tmp_path):
    """Named after the papers: a preset fills what the config leaves unset; explicit wins."""
    from dialforge.train.trainer import PRESETS, _lora_config, _sft_args

    base = {"kind": "simulator", "data": ["x.jsonl"], "model": "m", "out": str(tmp_path)}
    default = TrainConfig(**base)
    assert (default.preset, default.lora, default.lora_r, default.learning_rate) == ("default", True, 16, 2e-4)
    assert (default.lr_scheduler, default.warmup_ratio, default.weight_decay, default.grad_accum) == (
        "linear",
        0.0,
        0.0,
        1,
    )
    plato = TrainConfig(**base, preset="platolm")
    assert (plato.lora, plato.epochs, plato.learning_rate, plato.lr_scheduler, plato.warmup_ratio) == (
        False,
        3.0,
        2e-5,
        "cosine",
        0.03,
    )
    assert plato.batch_size * plato.grad_accum == 128 and plato.max_length == 2048 and plato.weight_decay == 0.0
    assert _lora_config(plato) is None  # full fine-tune
    args = _sft_args(plato, tmp_path)
    assert (args.lr_scheduler_type.value, args.warmup_steps, args.learning_rate) == ("cosine", 0.03, 2e-5)
    assert args.per_device_train_batch_size * args.gradient_accumulation_steps == 128
    talk = TrainConfig(**base, preset="selftalk")
    assert (talk.lora, talk.lora_r, talk.learning_rate, talk.epochs, talk.lr_scheduler, talk.weight_decay) == (
        True,
        64,
        5e-4,
        1.0,
        "inverse_sqrt",
        0.01,
    )
    lora = _lora_config(talk)
    assert (lora.r, lora.lora_alpha, lora.target_modules) == (64, 128, "all-linear")
    args = _sft_args(talk, tmp_path)
    assert (args.lr_scheduler_type.value, args.weight_decay, args.num_train_epochs) == ("inverse_sqrt", 0.01, 1.0)
    # an explicit value beats the preset, the rest of the preset still applies
    mixed = TrainConfig(**base, preset="platolm", learning_rate=1e-5, grad_accum=8)
    assert (mixed.learning_rate, mixed.grad_accum, mixed.lr_scheduler, mixed.lora) == (1e-5, 8, "cosine", False)
    assert set(PRESETS) == {"default", "platolm", "selftalk"}
    with pytest.raises(ValueError, match="preset"):
        TrainConfig(**base, preset="ideas")


@pytest.mark.slow
def test_selftalk_preset_trains_with_its_schedule(tiny_model_dir, threads, tmp_path):
    """Inverse square root (no warmup: timescale 10,000 steps) holds the rate near 5e-4 where
    the default linear schedule falls to 0 by the last step."""
    common = {"kind": "chat", "data": [str(threads)], "model": str(tiny_model_dir), "max_length": 512}
    common |= {"max_steps": 6, "logging_steps": 1, "save_steps": 100}
    talk = train(TrainConfig(**common, out=str(tmp_path / "talk"), preset="selftalk"))
    lin = train(TrainConfig(**common, out=str(tmp_path / "lin"), learning_rate=5e-4))
    assert len(talk["learning_rates"]) == len(lin["learning_rates"]) == 6
    assert min(talk["learning_rates"]) > 4.99e-4 and talk["config"]["lora_r"] == 64
    assert lin["learning_rates"][-1] < 1e-4 < lin["learning_rates"][0]
