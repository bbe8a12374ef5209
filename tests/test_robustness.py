"""Small guarantees a new user meets first: file modes, the offline model name everywhere."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from dialforge.io.reader import atomic_write_bytes


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_outputs_are_created_with_the_users_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        atomic_write_bytes(tmp_path / "out.jsonl", b"{}\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.jsonl").stat().st_mode) == 0o666 & ~umask


ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ROOT / "data" / "oasst" / "prompt_lottery_en_250_text.jsonl"


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory, tiny_model_dir):
    """A user cache folder where `dialforge-tiny` is already built (the session's tiny model
    stands in for it; test_pipeline's quickstart covers building it)."""
    cache = tmp_path_factory.mktemp("xdg-cache")
    shutil.copytree(tiny_model_dir, cache / "dialforge" / "tiny-model-v1")
    return cache


def _cli(cmd, args, cache, out):
    # offline and with a hub address that cannot answer: nothing may reach for the network
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"}
    return subprocess.run([*cmd, *args, "--out", str(out)], capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow
def test_dialforge_tiny_trains_offline(tiny_cache, tmp_path, dialforge_cli):
    data = tmp_path / "d.jsonl"
    data.write_text(
        "".join(
            json.dumps({"messages": [{"role": "user", "content": f"q {i}"}, {"role": "assistant", "content": "a"}]})
            + "\n"
            for i in range(4)
        )
    )
    args = ["train", "chat", "--model", "dialforge-tiny", "--data", str(data), "--max-steps", "1", "--full"]
    r = _cli(dialforge_cli, args, tiny_cache, tmp_path / "t")
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads((tmp_path / "t" / "train_summary.json").read_text())
    assert summary["steps"] == 1 and summary["config"]["model"] == "dialforge-tiny"


@pytest.mark.slow
def test_dialforge_tiny_simulates_offline(tiny_cache, tmp_path, dialforge_cli):
    cfg = tmp_path / "sim.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "mode": "socratic",
                "seeds": {"questions": [str(QUESTIONS)], "limit": 2},
                "user": {"model": "dialforge-tiny", "params": {"max_tokens": 8}},
                "assistant": {"model": "dialforge-tiny", "params": {"max_tokens": 8}},
                "max_turns": 2,
            }
        )
    )
    r = _cli(dialforge_cli, ["simulate", "--config", str(cfg)], tiny_cache, tmp_path / "s")
    assert r.returncode == 0, r.stderr[-2000:]
    assert len((tmp_path / "s" / "conversations.jsonl").read_text().splitlines()) == 2


def test_every_in_process_backend_resolves_the_tiny_name(tiny_cache, monkeypatch):
    """simulate, selftalk, eval and answer build their backends with make_backend."""
    from dialforge.llm.config import backend_config, resolve_model
    from dialforge.llm.pool import make_backend

    monkeypatch.setenv("XDG_CACHE_HOME", str(tiny_cache))
    path = str(tiny_cache / "dialforge" / "tiny-model-v1")
    assert resolve_model("dialforge-tiny") == path
    assert resolve_model("org/model") == "org/model"
    local = make_backend(backend_config(model="dialforge-tiny"))
    # it loads the cached folder but records the name: no local path in manifests or exports
    assert (local.model_id, local._path) == ("dialforge-tiny", path)
    from dialforge.embedded import canonical

    assert canonical("smollm2") == "smollm2-135m"  # an alias is recorded by the model's own name
    http = make_backend(backend_config(model="dialforge-tiny", base_url="http://127.0.0.1:9/v1"))
    assert http.model_id == "dialforge-tiny"  # a server may serve a model of that name


@pytest.mark.parametrize(
    "argv", [["convert", "a", "b", "--bogus"], ["convert"], ["nosuch"], ["stats", "x", "--json=1"], ["eval", "x"]]
)
def test_the_cli_catches_the_usage_errors_typer_really_raises(argv):
    """typer may vendor click (typer._click) or use click itself: whatever it raises for a usage
    mistake must be the class `main()` catches (found through the public typer.BadParameter)."""
    from dialforge import cli

    with pytest.raises(Exception) as e:
        cli.app(argv, standalone_mode=False)
    assert isinstance(e.value, cli._UsageError), type(e.value).__mro__
