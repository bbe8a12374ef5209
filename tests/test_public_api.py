"""The public surface: every exported name imports and is documented; the package ships its
data, examples and typing marker."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import dialforge

ROOT = Path(__file__).resolve().parents[1]


def _documented() -> set[str]:
    text = (ROOT / "docs/api.md").read_text()
    return {n for row in re.findall(r"^\| `([^|]+)` \|", text, flags=re.M) for n in re.findall(r"[\w]+", row)}


def test_every_export_imports_and_is_documented():
    assert len(dialforge.__all__) == len(set(dialforge.__all__))
    for name in dialforge.__all__:
        assert getattr(dialforge, name) is not None, name
    documented = _documented()
    assert set(dialforge.__all__) - documented == set(), "exported but not in docs/api.md"
    assert documented - set(dialforge.__all__) == set(), "in docs/api.md but not exported"


def test_command_functions_at_the_top_level_and_subpackages_still_import():
    from dialforge.simulate import Engine, simulate_async
    from dialforge.simulate.run import simulate

    assert dialforge.simulate is simulate and dialforge.simulate_async is simulate_async and Engine
    for name in ("answer", "induce", "simulate", "selftalk", "score", "train", "mt_bench", "run_pipeline"):
        assert callable(getattr(dialforge, name)), name


def test_package_data_is_inside_the_package():
    pkg = Path(dialforge.__file__).parent
    assert (pkg / "py.typed").exists()
    assert (pkg / "examples/quickstart.yaml").exists()
    assert (pkg / "data/oasst/prompt_lottery_en_250_text.jsonl").exists()
    assert (pkg / "data/fastchat/mt_bench/question.jsonl").exists()


def test_the_packaged_examples_read_their_data_from_any_directory(tmp_path, monkeypatch):
    """A config file's relative input paths are read from the working directory, else from
    the file's folder: the installed examples (`../data/...`) work wherever a user stands."""
    from dialforge.config import iter_inputs, load_config
    from dialforge.pipeline import PipelineConfig
    from dialforge.simulate import SimulateConfig

    pkg = Path(dialforge.__file__).parent
    monkeypatch.chdir(tmp_path)  # any directory
    cfg = load_config(PipelineConfig, pkg / "examples/quickstart.yaml")
    inputs = iter_inputs(cfg)
    assert {w for w, _ in inputs} == {"induce.dialogues[0]", "simulate.seeds.questions[0]"}
    assert all(Path(p).exists() for _, p in inputs)
    for name in ("persona", "socratic"):
        assert all(Path(p).exists() for _, p in iter_inputs(load_config(SimulateConfig, pkg / f"examples/{name}.yaml")))
    # a path that exists from the working directory wins; one found nowhere is left as written
    (tmp_path / "sub").mkdir()
    for f in ("mine.jsonl", "both.jsonl", "sub/both.jsonl"):
        (tmp_path / f).write_text("{}\n")
    (tmp_path / "c.yaml").write_text("dialogues: [mine.jsonl, both.jsonl, nowhere.jsonl]\nmodel: {model: m}\n")
    monkeypatch.chdir(tmp_path / "sub")
    from dialforge.induce import InduceConfig

    got = load_config(InduceConfig, tmp_path / "c.yaml")
    assert got.dialogues == [str(tmp_path / "mine.jsonl"), "both.jsonl", "nowhere.jsonl"]


@pytest.mark.slow
def test_wheel_ships_data_examples_and_py_typed(tmp_path):
    """A non-editable build: what `pip install .` installs."""
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-w", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = tmp_path.glob("dialforge-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "dialforge/py.typed",
        "dialforge/examples/quickstart.yaml",
        "dialforge/data/oasst/en_100_tree.jsonl",
        "dialforge/data/oasst/prompt_lottery_en_250_text.jsonl",
        "dialforge/data/fastchat/judge_prompts.jsonl",
        "dialforge/report/assets/report.js",
        "dialforge/report/assets/report.css",
    } <= names
    # the lazy exports read each package's __init__.pyi at run time: every one ships
    stubs = {f"dialforge/{p.relative_to(ROOT / 'src' / 'dialforge').as_posix()}" for p in (ROOT / "src").rglob("*.pyi")}
    assert len(stubs) >= 14 and stubs <= names, sorted(stubs - names)
