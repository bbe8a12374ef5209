"""`dialforge run` end to end (tiny model and loopback server); the report's tests are in test_report.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(args, env_extra=None, **kw):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "dialforge.cli", *args], capture_output=True, text=True, cwd=ROOT, env=env, **kw
    )


def _calls(out: Path) -> int:
    total = 0
    for u in out.rglob("usage.json"):
        total += sum(c["calls"] for c in json.loads(u.read_text())["totals"].values())
    return total


@pytest.mark.slow
def test_quickstart_on_tiny_model_and_resume(tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    out = tmp_path / "qs"
    r = _run(["run", "examples/quickstart.yaml", "--out", str(out), "--model", "dialforge-tiny"], env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "text is not meaningful" in r.stderr
    assert (tmp_path / "cache/dialforge/tiny-model-v1/config.json").exists()  # built once, cached
    state = json.loads((out / "pipeline.json").read_text())
    assert str(tmp_path) not in (out / "pipeline.json").read_text()  # files inside the run, by relative path
    names = ("strategy", "persona", "socratic")
    assert list(state["stages"]) == [
        "start",
        "holdout",
        "induce",
        *(f"simulate.{n}" for n in names),
        *(f"select.{n}" for n in names),
        *(f"realism.{n}" for n in names),
        "report",
        "finished",
    ]
    # realism holds real users out of induction (by OASST tree) and compares each simulator with them
    held = state["stages"]["holdout"]
    assert held["induce"] + held["held_out"] == 564 and held["held_out"] > 0
    # 18 follow-up turns; the tiny model's random 'strategies' that are degenerate fail (and are counted)
    induce = state["stages"]["induce"]
    assert induce["dialogues_read"] == 60 and 0 < induce["extracted"] <= 18
    for name in names:
        assert state["stages"][f"simulate.{name}"]["conversations"] == 12
        assert (out / "simulate" / name / "scores_summary.json").exists()
        sel = state["stages"][f"select.{name}"]
        assert sel["conversations"] == 12 and sel["failed"] == 0
        assert sel["conversations"] >= sel["kept_after_filter"] >= sel["kept_after_dedup"] > 0
        assert sel["exports"]["sharegpt"] == f"export/{name}.sharegpt.jsonl"
        exported = (out / sel["exports"]["sharegpt"]).read_text().splitlines()
        assert len(exported) == sel["kept_after_dedup"]
        assert (out / "export" / name / "dataset_info.json").exists()
        card = json.loads((out / state["stages"][f"realism.{name}"]["card"]).read_text())
        assert 0 <= card["discriminator"]["auc"] <= 1 and (out / "simulate" / name / "realism_floor.json").exists()
    # the tiny model writes degenerate 'strategies' (failed extractions): one list of warnings, the
    # same in the CLI, pipeline.json and the report, and --strict fails on it
    cli_warnings = [x.removeprefix("warning: ") for x in r.stderr.splitlines() if x.startswith("warning: ")]
    assert state["warnings"] and cli_warnings == state["warnings"]
    assert any(w.startswith("extract: ") and "answers were degenerate and left out" in w for w in state["warnings"])
    from dialforge.report.collect import read_run

    assert read_run(out).warnings == state["warnings"]
    assert (out / "report.html").stat().st_size > 10_000
    calls = _calls(out)
    # started again: nothing is redone, no model call is made twice (a degenerate answer is
    # kept, not retried: a re-run that re-asked it could change the library under the simulators)
    r = _run(["run", "examples/quickstart.yaml", "--out", str(out), "--strict", "--model", "dialforge-tiny"], env)
    assert r.returncode == 3, r.stderr[-3000:]
    assert _calls(out) == calls
    lines = (out / "simulate/persona/conversations.jsonl").read_text().splitlines()
    assert len(lines) == 12 and len({json.loads(x)["id"] for x in lines}) == 12


@pytest.mark.slow
def test_quickstart_on_loopback_server(tmp_path):
    import hashlib

    from dialforge.testing import FakeOpenAIServer, example_for_schema

    def reply(body):
        h = hashlib.sha256(json.dumps(body["messages"]).encode()).hexdigest()
        rf = body.get("response_format")
        if rf:
            obj = example_for_schema(rf["json_schema"]["schema"])
            letters = h[:24].translate(str.maketrans("0123456789", "ghijklmnop"))  # words, not digits
            for k, v in obj.items():
                if isinstance(v, str):
                    obj[k] = f"{k} {letters[:12]} {letters[12:]}"
            return json.dumps(obj)
        return f"{h} {h[::-1]}?"

    with FakeOpenAIServer(reply=reply) as srv:
        r = _run(
            [
                "run",
                "examples/quickstart.yaml",
                "--out",
                str(tmp_path / "qs"),
                "--base-url",
                srv.base_url,
                "--model",
                "served-model",
            ]
        )
        served = srv.served
    assert r.returncode == 0, r.stderr[-3000:]
    assert "not meaningful" not in r.stderr
    state = json.loads((tmp_path / "qs/pipeline.json").read_text())
    assert state["stages"]["finished"] == {}
    assert served == _calls(tmp_path / "qs")
    manifest = json.loads((tmp_path / "qs/simulate/persona/manifest.json").read_text())
    assert manifest["models"] == {"user": "served-model", "assistant": "served-model"}


_SMALL = """
model: {model: served-model, base_url: URL}
simulate:
  seeds: {questions: [data/oasst/prompt_lottery_en_250_text.jsonl], limit: 4}
  max_turns: 2
  simulators:
    - {name: persona, mode: persona, personas: [a synthetic persona for tests]}
realism: null
filter: user_turns >= 9
export: [sharegpt]
report: false
"""


@pytest.mark.slow
def test_run_force_new_resume_funnel_and_strict(tmp_path):
    """`run` refuses a changed config unless --force-new (the old run is moved aside, not
    deleted); an operational knob resumes; the funnel names every count and path; a filter
    that keeps nothing is a warning, and --strict makes it exit 3."""
    from dialforge.testing import FakeOpenAIServer

    out = tmp_path / "p"
    import hashlib

    def reply(body):  # distinct synthetic text per request
        h = hashlib.sha256(json.dumps(body["messages"]).encode()).hexdigest()
        return f"{h[:16]} {h[16:32]} {h[32:48]}?"

    with FakeOpenAIServer(reply=reply) as srv:
        cfg = tmp_path / "small.yaml"
        cfg.write_text(_SMALL.replace("URL", srv.base_url))
        r = _run(["run", str(cfg), "--out", str(out)])
        assert r.returncode == 0, r.stderr[-3000:]
        state = json.loads((out / "pipeline.json").read_text())
        sel = state["stages"]["select.persona"]
        assert (sel["conversations"], sel["failed"], sel["kept_after_filter"], sel["kept_after_dedup"]) == (4, 0, 0, 0)
        assert sel["exports"] == {"sharegpt": "export/persona.sharegpt.jsonl"}
        assert (out / "export/persona.sharegpt.jsonl").read_text() == ""
        assert "persona filter: kept 0 of 4" in " ".join(state["warnings"])
        assert "persona: 4 generated, 0 failed, 0 kept by the filter, 0 after dedup" in r.stderr
        assert r.stderr.rstrip().splitlines()[-1].startswith("warning: ")  # warnings come last
        served = srv.served
        # an operational knob (concurrency) resumes: no request is sent again
        r = _run(["run", str(cfg), "--out", str(out), "--set", "simulate.concurrency=3", "--strict"])
        assert r.returncode == 3 and "error: --strict" in r.stderr, r.stderr[-3000:]
        assert srv.served == served
        # a changed config is refused, naming --force-new
        r = _run(["run", str(cfg), "--out", str(out), "--set", "filter=user_turns >= 1"])
        assert r.returncode == 2 and "--force-new" in r.stderr and "Traceback" not in r.stderr
        r = _run(["run", str(cfg), "--out", str(out), "--set", "filter=user_turns >= 1", "--force-new"])
        assert r.returncode == 0, r.stderr[-3000:]
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("p.old-")]
    assert len(aside) == 1 and (aside[0] / "pipeline.json").exists()
    state = json.loads((out / "pipeline.json").read_text())
    assert state["stages"]["select.persona"]["kept_after_filter"] == 4 and not state["warnings"]


@pytest.mark.slow
def test_conversations_without_an_assistant_reply_are_never_exported(tmp_path):
    """The shipped fake server echoes the prompt: every persona conversation ends on
    `role_flip` at once, holding only the seed question. Such records are no training data:
    the funnel drops them whatever the filter, and says it kept nothing."""
    from dialforge.testing import FakeOpenAIServer

    out = tmp_path / "p"
    with FakeOpenAIServer() as srv:
        cfg = tmp_path / "small.yaml"
        cfg.write_text(_SMALL.replace("URL", srv.base_url).replace("filter: user_turns >= 9", "filter: null"))
        r = _run(["run", str(cfg), "--out", str(out)])
    assert r.returncode == 0, r.stderr[-3000:]
    convs = [json.loads(x) for x in (out / "simulate/persona/conversations.jsonl").read_text().splitlines()]
    assert len(convs) == 4 and {c["meta"]["termination_reason"] for c in convs} == {"role_flip"}
    assert all([m["role"] for m in c["messages"]] == ["user"] for c in convs)
    sel = json.loads((out / "pipeline.json").read_text())["stages"]["select.persona"]
    assert (sel["conversations"], sel["kept_after_filter"]) == (4, 0)
    assert (out / "export/persona.sharegpt.jsonl").read_text() == ""
    assert "warning: persona filter: kept 0 of 4" in r.stderr
    assert "warning: persona: simulate: 4/4 conversations ended on role_flip" in r.stderr


@pytest.mark.slow
def test_run_checks_the_realism_reference_before_any_request(tmp_path):
    """A realism `real:` file that is not dialogues fails at validation, naming file and field."""
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(
        _SMALL.replace("URL", "http://127.0.0.1:9/v1").replace(
            "realism: null", "realism: {real: data/oasst/en_100_text.jsonl}"
        )
    )
    r = _run(["run", str(cfg), "--out", str(tmp_path / "p")])
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "realism.real" in r.stderr and "en_100_text.jsonl:1" in r.stderr


@pytest.mark.slow
def test_seed_only_conversations_are_never_exported(tmp_path):
    """The honest funnel: a user simulator that never writes a usable turn leaves each
    conversation with the real seed question and one new answer. Such a record has no
    simulated user turn: it was exported (and ranked most realistic) before; now the funnel
    drops it whatever the filter says, `user_turns` counts 0, and the run warns."""
    from dialforge.testing import FakeOpenAIServer

    def reply(body):
        system = body["messages"][0]["content"] if body["messages"][0]["role"] == "system" else ""
        if "role-playing a human user" in system:
            return "Sure! Here is a complete answer to that question."  # a role flip, every draw
        return f"A synthetic answer number {len(json.dumps(body))} with enough words to count."

    out = tmp_path / "p"
    with FakeOpenAIServer(reply=reply) as srv:
        cfg = tmp_path / "small.yaml"
        cfg.write_text(_SMALL.replace("URL", srv.base_url).replace("filter: user_turns >= 9", "filter: null"))
        r = _run(["run", str(cfg), "--out", str(out)])
    assert r.returncode == 0, r.stderr[-3000:]
    convs = [json.loads(x) for x in (out / "simulate/persona/conversations.jsonl").read_text().splitlines()]
    assert len(convs) == 4
    for c in convs:
        assert [m["role"] for m in c["messages"]] == ["user", "assistant"] and c["messages"][0]["meta"]["seed"]
        assert c["meta"]["termination_reason"] == "role_flip" and c["meta"]["user_turns"] == 0
        assert len(c["meta"]["redrawn_user_turns"]) == 2  # drawn three times in all
    scores = [json.loads(x) for x in (out / "simulate/persona/scores.jsonl").read_text().splitlines()]
    assert {(s["user_turns"], s["seed_user_turns"], s["new_assistant_turns"]) for s in scores} == {(0, 1, 1)}
    sel = json.loads((out / "pipeline.json").read_text())["stages"]["select.persona"]
    assert (sel["conversations"], sel["kept_after_filter"]) == (4, 0)
    assert (out / "export/persona.sharegpt.jsonl").read_text() == ""
    assert "4/4 conversations have no simulated user turn (the seed alone)" in r.stderr


# -- the pipeline config composes the commands' configs --------------------------------------------


def _quickstart(**sets):
    from dialforge.config import load_config
    from dialforge.pipeline import PipelineConfig

    return load_config(PipelineConfig, ROOT / "examples/quickstart.yaml", sets=sets)


def test_a_simulator_is_a_simulate_config_partial_over_the_shared_stage():
    from dialforge.pipeline import simulate_configs

    # `simulate` takes user_tokenizer; a pipeline simulator used to refuse it ("Extra inputs are not permitted")
    cfg = _quickstart(**{"simulate.simulators.2.user_tokenizer": "tok/", "simulate.simulators.1.max_turns": 6})
    sims = simulate_configs(cfg, cfg.model, "lib.json")
    assert sims["socratic"].user_tokenizer == "tok/" and sims["strategy"].user_tokenizer is None
    assert sims["persona"].max_turns == 6 and sims["socratic"].max_turns == sims["strategy"].max_turns == 3
    assert sims["strategy"].strategy is not None and sims["strategy"].strategy.library == "lib.json"
    assert sims["strategy"].strategy.candidates == 5
    # an entry serializes to the keys it had when each mode had its own class, plus those it sets
    # (so a pipeline run started before keeps its config fingerprint), not every field as null
    common = {"name", "mode", "trained", "user", "user_format", "user_system_prompt", "seeds"}
    dumped = cfg.model_dump(mode="json")["simulate"]["simulators"]
    assert [set(d) for d in dumped] == [
        common | {"strategy"},
        common | {"personas", "max_turns"},
        common | {"user_tokenizer"},
    ]
    assert dumped[0]["strategy"]["candidates"] == 5 and dumped[2]["user_format"] == "prompted"
    assert set(_quickstart(train={"lr_scheduler": "cosine"}).model_dump()["train"]) == {
        "kind", "model", "max_steps", "lora", "max_length", "lr_scheduler"
    }  # fmt: skip


def test_a_pipeline_simulator_field_error_names_its_path(tmp_path):
    from dialforge.errors import ConfigError

    with pytest.raises(ConfigError, match=r"field 'simulate\.simulators\.1\.max_turns': Input should be greater than"):
        _quickstart(**{"simulate.simulators.1.max_turns": 0})
    with pytest.raises(ConfigError, match=r"field 'simulate\.simulators\.0\.strategy\.candidatez': unknown field"):
        _quickstart(**{"simulate.simulators.0.strategy.candidatez": 3})
    with pytest.raises(ConfigError, match=r"field 'simulate\.simulators\.2\.executor': unknown field"):
        _quickstart(**{"simulate.simulators.2.executor": "ray"})  # the pipeline's executor runs every stage


def test_a_persona_simulator_without_personas_fails_its_mode_check_naming_it():
    from dialforge.errors import ConfigError
    from dialforge.pipeline import check_simulators

    cfg = _quickstart(**{"simulate.simulators.1.personas": []})
    with pytest.raises(
        ConfigError, match=r"^p.yaml: simulate.simulators.1 \(persona\): .*mode persona needs a list of"
    ):
        check_simulators(cfg, "p.yaml")


def test_the_train_stage_is_a_train_config_with_the_pipelines_defaults():
    from dialforge.errors import ConfigError

    cfg = _quickstart(train={"learning_rate": 1e-4, "template": "chatml"})
    assert cfg.train is not None
    tc = cfg.train.for_simulator("final.jsonl", "base", "out/train/x")
    assert (tc.kind, tc.max_steps, tc.max_length, tc.lora) == ("chat", 20, 1024, True)  # a short run by default
    assert (tc.learning_rate, tc.template, tc.data, tc.model, tc.out) == (
        1e-4,
        "chatml",
        ["final.jsonl"],
        "base",
        "out/train/x",
    )
    assert _quickstart(train={"preset": "platolm"}).train.for_simulator("d", "m", "o").max_length == 2048  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match=r"field 'train\.data': set by the pipeline"):
        _quickstart(train={"data": ["x.jsonl"]})
