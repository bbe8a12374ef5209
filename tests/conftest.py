from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dialforge.testing import FakeOpenAIServer, build_tiny_model

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture()
def cli(capsys, monkeypatch):
    """`dialforge ARGS` in this process (no interpreter start-up): a CompletedProcess with the
    exit code, stdout and stderr."""
    from dialforge.cli import main

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        monkeypatch.setattr(sys, "argv", ["dialforge", *args])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as e:
            code = int(e.code or 0)
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(list(args), code, out, err)

    return run


@pytest.fixture()
def fake_server():
    with FakeOpenAIServer() as srv:
        yield srv


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tokenizer trained on real OASST prompts + a random 2-layer Llama (built once)."""
    texts = [json.loads(line) for line in (DATA / "oasst/prompt_lottery_en_250_text.jsonl").open()]
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", texts, vocab_size=1024)


@pytest.fixture(scope="session")
def dialforge_cli() -> list[str]:
    """The installed console script beside this Python (what users run), else the module."""
    import sys

    script = Path(sys.executable).parent / "dialforge"
    return [str(script)] if script.exists() else [sys.executable, "-m", "dialforge.cli"]


@pytest.fixture(scope="session", autouse=True)
def _isolated_embedding_cache(tmp_path_factory):
    """Embedders cache under $DIALFORGE_CACHE: one folder per test session, not ~/.cache."""
    import os

    old = os.environ.get("DIALFORGE_CACHE")
    os.environ["DIALFORGE_CACHE"] = str(tmp_path_factory.mktemp("dialforge-cache"))
    yield
    if old is None:
        os.environ.pop("DIALFORGE_CACHE", None)
    else:
        os.environ["DIALFORGE_CACHE"] = old
