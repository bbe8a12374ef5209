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
