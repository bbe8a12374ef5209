"""Every shipped example config validates."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialforge.config import load_config
from dialforge.simulate import SimulateConfig

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("name", ["persona.yaml", "socratic.yaml", "strategy.yaml"])
def test_simulate_examples_validate(name):
    cfg = load_config(SimulateConfig, EXAMPLES / name)
    assert cfg.mode in name


@pytest.mark.parametrize("name", ["multi_gpu.yaml", "deepspeed_zero3.yaml", "fsdp.yaml"])
def test_accelerate_configs_parse(name):
    import yaml

    cfg = yaml.safe_load((EXAMPLES.parent / "configs/accelerate" / name).read_text())
    assert cfg["distributed_type"] in ("MULTI_GPU", "DEEPSPEED", "FSDP") and cfg["num_processes"] >= 2
