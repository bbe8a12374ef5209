"""Configs are data: importing any config module loads no engine module, and each fact the
configs and the engine share has one source."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# what a config module must never load: the engine (kernel, executors), the cache, clients and
# backends, the readers and the format registry, the simulator engine, the metrics, induction
ENGINE = {
    "dialforge.run.kernel",
    "dialforge.run.stage",
    "dialforge.run.ray_executor",
    "dialforge.llm.cache",
    "dialforge.llm.client",
    "dialforge.llm.http",
    "dialforge.llm.local",
    "dialforge.llm.pool",
    "dialforge.io.reader",
    "dialforge.io.registry",
    "dialforge.simulate.engine",
    "dialforge.simulate.simulators",
    "dialforge.score.scoring",
    "dialforge.induce.extract",
    "dialforge.induce.embed",
    "dialforge.induce.pipeline",
    "dialforge.train.trainer",
    "dialforge.pipeline.run",
}


def _config_modules() -> list[str]:
    found = sorted(".".join(p.relative_to(SRC).with_suffix("").parts) for p in (SRC / "dialforge").rglob("config.py"))
    return [*found, "dialforge.markers"]


def test_the_config_modules_are_found():
    mods = _config_modules()
    for m in (
        "dialforge.config",
        "dialforge.llm.config",
        "dialforge.run.config",
        "dialforge.answer.config",
        "dialforge.induce.config",
        "dialforge.score.config",
        "dialforge.train.config",
        "dialforge.realism.config",
        "dialforge.pipeline.config",
    ):
        assert m in mods


_PROBE = """
import importlib, json, sys
out = {}
for name in sys.argv[1:]:
    for m in [m for m in sys.modules if m == "dialforge" or m.startswith("dialforge.")]:
        del sys.modules[m]  # each config imported as if first: nothing of dialforge loaded before it
    importlib.import_module(name)
    out[name] = sorted(m for m in sys.modules if m.startswith("dialforge."))
print(json.dumps(out))
"""


def _loaded(mods: list[str]) -> dict[str, list[str]]:
    r = subprocess.run([sys.executable, "-c", _PROBE, *mods], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[-1])


def test_importing_a_config_module_loads_no_engine_module():
    mods = _config_modules()
    loaded = _loaded([*mods, "dialforge.pipeline.run"])
    assert all(m in loaded[m] for m in mods)
    assert "dialforge.run.kernel" in loaded.pop("dialforge.pipeline.run")  # the probe sees an engine import
    assert {m: sorted(set(found) & ENGINE) for m, found in loaded.items()} == {m: [] for m in mods}


def test_configs_stay_importable_where_they_were():
    from dialforge.answer import AnswerConfig
    from dialforge.induce.pipeline import InduceConfig
    from dialforge.score import MTBenchConfig, ScoreConfig
    from dialforge.score.mtbench import MTBenchConfig as MTBenchConfig2
    from dialforge.score.scoring import ScoreConfig as ScoreConfig2
    from dialforge.train.trainer import PRESETS, TrainConfig

    assert AnswerConfig.__module__ == "dialforge.answer.config"
    assert InduceConfig.__module__ == "dialforge.induce.config"
    assert ScoreConfig is ScoreConfig2 and ScoreConfig.__module__ == "dialforge.score.config"
    assert MTBenchConfig is MTBenchConfig2 and MTBenchConfig.__module__ == "dialforge.score.config"
    assert TrainConfig.__module__ == "dialforge.train.config" and set(PRESETS) == {"default", "platolm", "selftalk"}


def test_the_pipeline_checks_live_beside_its_config():
    from dialforge import pipeline
    from dialforge.pipeline import validate as pipeline_validate

    assert pipeline.validate_pipeline is pipeline_validate.validate_pipeline
    # a command that checks its inputs does not load the pipeline's config for it
    assert "dialforge.pipeline.config" not in _loaded(["dialforge.checks"])["dialforge.checks"]


def test_the_default_embedder_is_one_fact():
    from dialforge.induce.config import DEFAULT_EMBEDDER
    from dialforge.induce.embed import DEFAULT_EMBEDDER as EMBED_DEFAULT
    from dialforge.realism.config import RealismConfig
    from dialforge.score.config import ScoreConfig

    assert EMBED_DEFAULT == DEFAULT_EMBEDDER
    assert ScoreConfig().embedder == DEFAULT_EMBEDDER == RealismConfig().embedder


def test_a_reader_format_is_checked_when_the_config_is_validated():
    from pydantic import ValidationError

    from dialforge.induce.config import InduceConfig

    with pytest.raises(ValidationError, match=r"unknown format 'oasts' \(expected one of auto,"):
        InduceConfig(dialogues=["x.jsonl"], format="oasts", model={"kind": "scripted"})
    assert InduceConfig(dialogues=["x.jsonl"], format="mapping:m.yaml", model={"kind": "scripted"}).format


# -- one source for each fact ---------------------------------------------------------------------


def test_failure_reasons_are_termination_reasons_from_one_leaf():
    from dialforge.run.health import FAILURE_REASONS, conversation_warnings
    from dialforge.simulate.reasons import Termination
    from dialforge.termination import FAILURE

    assert FAILURE_REASONS is FAILURE and all(isinstance(r, Termination) for r in FAILURE)
    assert FAILURE_REASONS == {
        "error", "rejections", "role_flip", "repetition", "empty_turn", "context_budget", "copied", "leak", "degenerate"
    }  # fmt: skip
    recs = [{"meta": {"termination_reason": "leak"}, "messages": []}] * 3
    assert "run: 3/3 conversations ended on leak" in conversation_warnings("run", recs)
    recs = [{"meta": {"termination_reason": "goodbye"}, "messages": []}] * 3
    assert not any("ended on" in w for w in conversation_warnings("run", recs))


def test_meta_fields_are_one_list_and_both_filter_checks_read_it():
    from dialforge.checks import check_filter, known_filter_fields
    from dialforge.errors import ConfigError
    from dialforge.score import validate_filter
    from dialforge.score.registry import META_FIELDS, SIMULATED_META, conversation_fields, filter_names

    assert SIMULATED_META < META_FIELDS
    assert known_filter_fields() == conversation_fields() | SIMULATED_META == filter_names(simulated_only=True)
    assert known_filter_fields(judge=True) - known_filter_fields() == {"judge_rationale"}
    # `dialforge filter` reads any file (a reader's `lang`); a pipeline filters what it simulated
    assert validate_filter("lang == 'en' and sample_index == 0")
    check_filter("sample_index == 0 and persona != 'x'", "p.yaml")
    with pytest.raises(ConfigError, match=r"^p.yaml: field 'filter': filter expression .*unknown name 'lang'"):
        check_filter("lang == 'en'", "p.yaml")
    check_filter("judge_rationale != ''", "p.yaml", judge=True)


def test_the_backend_pool_lives_with_the_builders_not_the_configs():
    from dialforge import llm
    from dialforge.llm import config, pool

    assert pool.BackendPool is llm.BackendPool and pool.make_backend is llm.make_backend
    assert not hasattr(config, "BackendPool") and not hasattr(config, "make_backend")
