"""The audit's small faults, each a clean error or a warning: inputs that gave a traceback
(a 5,000-digit --set value, deeply nested YAML, OASST parent ids in a cycle, a library.json
with a non-numeric size in `report`) and inputs that were silently accepted (duplicate YAML
keys, two simulators with one name, simulator names `.`/`..`, an id that is an object)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dialforge.config import parse_set, read_yaml
from dialforge.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "dialforge.cli", *args], capture_output=True, text=True, env=env)


def _one_error(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 2, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr[-2000:]
    return lines[0]


# -- YAML and --set ------------------------------------------------------------------------------
def test_a_set_value_of_5000_digits_is_one_error(tmp_path):
    r = _cli("run", str(ROOT / "examples/quickstart.yaml"), "--out", str(tmp_path / "o"), "--set", "x=" + "9" * 5000)
    assert _one_error(r) == "error: --set x: an integer of 5000 characters is too long"
    with pytest.raises(ConfigError, match="^--set a.b: the value is nested too deeply$"):
        parse_set(["a.b=" + "[" * 5000 + "]" * 5000])


def test_deeply_nested_yaml_is_one_error(tmp_path):
    cfg = tmp_path / "deep.yaml"
    cfg.write_text("a: " + "[" * 3000 + "]" * 3000 + "\n")
    assert _one_error(_cli("run", str(cfg), "--out", str(tmp_path / "o"))) == (
        f"error: {cfg}: invalid YAML in config file: nested too deeply"
    )


def test_a_key_given_twice_is_an_error_naming_both_lines(tmp_path):
    cfg = tmp_path / "dup.yaml"
    cfg.write_text("model: {model: a}\nsimulate:\n  max_turns: 3\n  max_turns: 4\n")
    with pytest.raises(ConfigError) as e:
        read_yaml(cfg)
    assert str(e.value) == f"{cfg}:4:3: invalid YAML in config file: duplicate key 'max_turns' (first at line 3)"
    assert _one_error(_cli("run", str(cfg), "--out", str(tmp_path / "o"))) == f"error: {e.value}"


def test_merge_keys_and_the_same_key_in_two_mappings_still_load(tmp_path):
    cfg = tmp_path / "ok.yaml"
    cfg.write_text("base: &b {x: 1, y: 2}\nover:\n  <<: *b\n  x: 3\nother: {x: 1}\n")
    assert read_yaml(cfg) == {"base": {"x": 1, "y": 2}, "over": {"x": 3, "y": 2}, "other": {"x": 1}}


# -- pipeline simulators --------------------------------------------------------------------------
_SIMS = """model: {{model: dialforge-tiny}}
simulate:
  seeds: {{questions: [{q}], limit: 2}}
  simulators:
    - {{name: {a}, mode: socratic}}
    - {{name: {b}, mode: persona, personas: [x]}}
"""


def test_two_simulators_with_one_name_are_refused(tmp_path):
    cfg = tmp_path / "p.yaml"
    cfg.write_text(_SIMS.format(q=ROOT / "data/oasst/prompt_lottery_en_250_text.jsonl", a="a", b="a"))
    assert _one_error(_cli("run", str(cfg), "--out", str(tmp_path / "o"))) == (
        f"error: {cfg}: field 'simulate.simulators': simulators 0 and 1 are both named 'a' (names must differ)"
    )
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("name", [".", ".."])
def test_a_simulator_named_dot_or_dotdot_is_refused(tmp_path, name):
    cfg = tmp_path / "p.yaml"
    cfg.write_text(_SIMS.format(q=ROOT / "data/oasst/prompt_lottery_en_250_text.jsonl", a="a", b=f"'{name}'"))
    assert _one_error(_cli("run", str(cfg), "--out", str(tmp_path / "o"))) == (
        f"error: {cfg}: field 'simulate.simulators.1.name': "
        f"{name!r} is no folder name (each simulator writes simulate/<name>/)"
    )


# -- OASST message exports ------------------------------------------------------------------------
def _msgs(tmp_path: Path, *rows: tuple[str, str | None, str]) -> Path:
    p = tmp_path / "m.jsonl"
    p.write_text(
        "".join(
            json.dumps({"message_id": m, "parent_message_id": parent, "role": role, "text": f"text of {m}"}) + "\n"
            for m, parent, role in rows
        )
    )
    return p


@pytest.mark.parametrize(
    ("rows", "says"),
    [
        ([("a", "a", "prompter")], "1: field 'parent_message_id': message 'a' is its own parent"),
        (
            [("x", "y", "prompter"), ("y", "x", "assistant")],
            "1: field 'parent_message_id': parent ids form a cycle ('x' -> 'y' -> 'x')",
        ),
        (  # a repeated id closed a loop through a root: RecursionError before
            [("r", None, "prompter"), ("c", "r", "assistant"), ("r", "c", "prompter")],
            "3: field 'message_id': message id 'r' again (first at line 1)",
        ),
    ],
)
def test_oasst_message_cycles_are_one_located_error(tmp_path, rows, says):
    data = _msgs(tmp_path, *rows)
    r = _cli("convert", str(data), str(tmp_path / "o.jsonl"), "--from", "oasst-messages")
    assert _one_error(r) == f"error: {data}:{says}"


def test_an_oasst_thread_deeper_than_the_limit_is_refused_and_one_at_it_is_read(tmp_path):
    from dialforge.io.oasst_messages import MAX_DEPTH

    def chain(n: int) -> list[tuple[str, str | None, str]]:
        return [("m0", None, "prompter")] + [
            (f"m{i}", f"m{i - 1}", "assistant" if i % 2 else "prompter") for i in range(1, n + 1)
        ]

    data = _msgs(tmp_path, *chain(MAX_DEPTH))
    r = _cli("convert", str(data), str(tmp_path / "o.jsonl"), "--from", "oasst-messages")
    assert r.returncode == 0, r.stderr
    data = _msgs(tmp_path, *chain(MAX_DEPTH + 1))
    r = _cli("convert", str(data), str(tmp_path / "o.jsonl"), "--from", "oasst-messages")
    assert _one_error(r) == (
        f"error: {data}:{MAX_DEPTH + 2}: field 'parent_message_id': a thread deeper than {MAX_DEPTH} messages"
    )


# -- ids ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "kind"), [({"a": 1}, "an object"), ([1], "a list"), (True, "a boolean")])
def test_an_id_that_is_no_string_or_number_is_a_located_error(tmp_path, value, kind):
    turns = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"id": "fine", "messages": turns}) + "\n" + json.dumps({"id": value, "messages": turns}))
    r = _cli("convert", str(data), str(tmp_path / "o.jsonl"), "--on-error", "fail")
    assert _one_error(r) == f"error: {data}:2: field 'id': expected a string or a number, got {kind}"
    r = _cli("convert", str(data), str(tmp_path / "o.jsonl"), "--on-error", "skip")
    assert r.returncode == 0
    assert [json.loads(x)["id"] for x in (tmp_path / "o.jsonl").read_text().splitlines()] == ["fine"]


# -- report --------------------------------------------------------------------------------------
def test_report_on_a_library_with_a_non_numeric_size_lists_the_problem(tmp_path):
    from dialforge.report.collect import read_run

    run = tmp_path / "run"
    run.mkdir()
    strategy = {"id": "s1", "text": "ask why", "size": 3, "members": ["a"], "examples": [], "centroid": [0.1, 0.2]}
    lib = {
        "schema_version": 1,
        "strategies": [
            {**strategy, "size": "big"},
            {**strategy, "id": "s2", "size": "huge"},
            {**strategy, "id": "s3", "centroid": ["x"]},
            7,
        ],
    }
    (run / "library.json").write_text(json.dumps(lib))
    (run / "manifest.json").write_text(json.dumps({"command": "induce", "config": {}, "stages": {}}))
    got = read_run(run)
    path = run / "library.json"
    assert [w for w in got.warnings if "library.json" in w] == [
        f"{path}: field 'strategies[0].size' is not a number ('big') (and 1 more like it); left out",
        f"{path}: field 'strategies[2].centroid' is not a list of numbers (['x']); left out",
        f"{path}: field 'strategies[3]' is not an object; left out",
    ]
    assert got.library is not None and [s["id"] for s in got.library["strategies"]] == ["s1", "s2", "s3"]
    r = _cli("report", str(run))
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert "strategies[0].size" in (run / "report.html").read_text()


def test_report_on_run_files_with_fields_of_the_wrong_type_lists_them(tmp_path):
    """pipeline.json and a manifest edited into other shapes: each field left out with one
    line, the page still made (the bad-input sweep found a traceback here)."""
    from dialforge.report.collect import read_run

    run = tmp_path / "run"
    (run / "simulate/a").mkdir(parents=True)
    (run / "pipeline.json").write_text(json.dumps({"config": [], "stages": {"select.a": 5}, "warnings": "x"}))
    (run / "simulate/a/conversations.jsonl").write_text('{"id": "c", "messages": []}\n')
    (run / "simulate/a/manifest.json").write_text(json.dumps({"config": 3, "models": [1]}))
    got = read_run(run)
    assert [w for w in got.warnings if "field" in w] == [
        f"{run / 'pipeline.json'}: field 'warnings' is not a list; left out",
        f"{run / 'pipeline.json'}: field 'config' is not an object; left out",
        f"{run / 'pipeline.json'}: field 'stages.select.a' is not an object; left out",
        f"{run / 'simulate/a/manifest.json'}: field 'config' is not an object; left out",
        f"{run / 'simulate/a/manifest.json'}: field 'models' is not an object; left out",
    ]
    r = _cli("report", str(run))
    assert r.returncode == 0, r.stderr
