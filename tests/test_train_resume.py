"""Train resume when the newest checkpoint's weights (or optimizer state) were cut by a kill
while trainer_state.json is whole: the checkpoint is skipped with a warning naming the file,
and training resumes from the previous one (or starts afresh when none is whole)."""

from __future__ import annotations

import json
import logging
import zipfile

import numpy as np
import pytest
from safetensors.numpy import save_file

from dialforge.train.trainer import last_complete_checkpoint


def _checkpoint(out, step: int) -> None:
    d = out / f"checkpoint-{step}"
    d.mkdir(parents=True)
    (d / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    save_file({"w": np.arange(4096, dtype=np.float32)}, str(d / "model.safetensors"))
    with zipfile.ZipFile(d / "optimizer.pt", "w") as z:
        z.writestr("archive/data.pkl", b"x" * 1000)


def _cut(path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("model.safetensors", "model.safetensors is cut short"),
        ("optimizer.pt", "optimizer.pt is cut short (not a whole torch.save archive)"),
    ],
)
def test_a_cut_file_in_the_newest_checkpoint_falls_back_to_the_previous(tmp_path, caplog, name, says):
    for step in (1, 2):
        _checkpoint(tmp_path, step)
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-2")
    _cut(tmp_path / "checkpoint-2" / name)
    with caplog.at_level(logging.WARNING, logger="dialforge.train"):
        assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-1")
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path / 'checkpoint-2'}: skipping incomplete checkpoint ({says}); resuming from an earlier one"
    ]


def test_no_whole_checkpoint_means_a_fresh_start(tmp_path):
    _checkpoint(tmp_path, 1)
    _cut(tmp_path / "checkpoint-1" / "model.safetensors", keep=0.001)  # not even the header
    assert last_complete_checkpoint(tmp_path) is None


@pytest.mark.slow
def test_training_resumes_past_a_checkpoint_with_cut_weights(tiny_model_dir, tmp_path):
    from dialforge.train import TrainConfig, train

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
    _cut(out / "checkpoint-2" / "model.safetensors")  # killed while saving; trainer_state.json whole
    s = train(TrainConfig(**base, max_steps=3, save_steps=1))
    assert s["resumed_from"] == str(out / "checkpoint-1") and s["steps"] == 3
