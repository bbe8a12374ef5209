"""Run directory, cache, usage and resume, through `dialforge answer` on real OASST prompts."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dialforge.answer import AnswerConfig, answer
from dialforge.errors import RunDirConflict
from dialforge.llm import backend_config
from dialforge.run import RecordStore, RunDir

SECRET = "sk-test-SECRET-do-not-leak-0123456789"


def _cfg(data_dir, srv, limit=20):
    return AnswerConfig(
        prompts=[str(data_dir / "oasst/prompt_lottery_en_250_text.jsonl")],
        assistant=backend_config(
            model="fake-model", base_url=srv.base_url, api_key_env="DIALFORGE_TEST_KEY", backoff_base_s=0.01
        ),
        limit=limit,
    )


def _all_bytes(path):
    for root, _, files in os.walk(path):
        for f in files:
            yield os.path.join(root, f), open(os.path.join(root, f), "rb").read()


def test_api_key_sent_but_never_written(data_dir, fake_server, tmp_path, monkeypatch):
    monkeypatch.setenv("DIALFORGE_TEST_KEY", SECRET)
    fake_server.inject("500", times=1)  # errors are logged too: still no key
    out = tmp_path / "run"
    summary = answer(_cfg(data_dir, fake_server), out, progress=False)
    assert summary["answered_now"] == 20
    assert fake_server.headers[0]["Authorization"] == f"Bearer {SECRET}"
    files = dict(_all_bytes(out))
    assert {"manifest.json", "usage.json", "run.log", "conversations.jsonl", "cache.sqlite"} <= {
        os.path.basename(f) for f in files
    }
    for f, blob in files.items():
        assert SECRET.encode() not in blob, f
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["assistant"]["api_key_env"] == "DIALFORGE_TEST_KEY"
    assert manifest["models"] == {"assistant": "fake-model"}


@pytest.mark.slow
def test_cache_and_usage_on_rerun_and_resume(data_dir, fake_server, tmp_path):
    out = tmp_path / "run"
    cfg = _cfg(data_dir, fake_server)
    answer(cfg, out, progress=False)
    assert len(fake_server.requests) == 20
    usage = json.loads((out / "usage.json").read_text())
    assert usage["stages"]["answer"]["fake-model"]["calls"] == 20
    tokens = usage["totals"]["fake-model"]["prompt_tokens"]
    first = (out / "conversations.jsonl").read_bytes()

    # a crash: the last 5 records lost, one half-written line left behind
    lines = first.splitlines(keepends=True)
    (out / "conversations.jsonl").write_bytes(b"".join(lines[:15]) + lines[15][:30])
    s = answer(cfg, out, progress=False)
    assert s == {"questions": 20, "answered_now": 5, "already_done": 15, "failed": 0, "total": 20, "warnings": []}
    assert len(fake_server.requests) == 20  # the 5 lost answers came from the cache
    rows = [json.loads(x) for x in (out / "conversations.jsonl").read_text().splitlines()]
    assert len(rows) == 20 and len({r["id"] for r in rows}) == 20
    assert (out / "conversations.jsonl").read_bytes().startswith(b"".join(lines[:15]))
    usage = json.loads((out / "usage.json").read_text())
    c = usage["stages"]["answer"]["fake-model"]
    assert (c["calls"], c["cache_hits"], usage["totals"]["fake-model"]["prompt_tokens"]) == (20, 5, tokens)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["resumes"] == 1

    # --no-cache really sends again
    answer(cfg, tmp_path / "run2", use_cache=False, progress=False)
    assert len(fake_server.requests) == 40


def test_different_config_refused_unless_force_new(data_dir, fake_server, tmp_path):
    out = tmp_path / "run"
    answer(_cfg(data_dir, fake_server, limit=3), out, progress=False)
    with pytest.raises(RunDirConflict, match="different config"):
        answer(_cfg(data_dir, fake_server, limit=4), out, progress=False)
    # operational knobs (concurrency, timeouts) may change on resume
    cfg = _cfg(data_dir, fake_server, limit=3)
    cfg.assistant.max_concurrency = 3
    assert answer(cfg, out, progress=False)["already_done"] == 3
    answer(_cfg(data_dir, fake_server, limit=4), out, force_new=True, progress=False)
    assert len(list(tmp_path.glob("run.old-*"))) == 1


def test_a_run_that_produced_nothing_gives_way_to_a_changed_config(tmp_path):
    """A run that stopped before its first result (a bad library, a tokenizer that would not
    load) must not make the fixed config say --force-new; one with a record still refuses."""
    out = tmp_path / "run"
    with RunDir(out, command="simulate", config={"library": "broken.json"}):
        pass  # the stage failed before any job
    with RunDir(out, command="simulate", config={"library": "fixed.json"}) as run:
        assert not run.resumed
        run.store("conversations.jsonl").append({"id": "c1"})
    assert len(list(tmp_path.glob("run.old-*"))) == 1  # moved aside, not deleted
    with pytest.raises(RunDirConflict, match="different config"):
        RunDir(out, command="simulate", config={"library": "other.json"})


def test_record_store_is_append_only_and_idempotent(tmp_path):
    s = RecordStore(tmp_path / "r.jsonl")
    assert s.append({"id": "a", "x": 1}) and not s.append({"id": "a", "x": 2})
    s.close()
    assert RecordStore(tmp_path / "r.jsonl").ids == {"a"}


@pytest.mark.slow
def test_cli_answer_with_config_errors(data_dir, fake_server, tmp_path):
    cfg = tmp_path / "a.yaml"
    cfg.write_text("prompts: [x]\nassistant:\n  model: m\n  temprature: 0.3\n")
    r = subprocess.run(
        [sys.executable, "-m", "dialforge.cli", "answer", "--config", str(cfg), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    assert "a.yaml: field 'assistant.temprature': unknown field" in r.stderr
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "dialforge.cli",
            "answer",
            "--prompts",
            str(data_dir / "oasst/en_100_text.jsonl"),
            "--limit",
            "7",
            "--out",
            str(tmp_path / "o"),
            "--base-url",
            fake_server.base_url,
            "--model",
            "fake-model",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert len((tmp_path / "o/conversations.jsonl").read_text().splitlines()) == 7
    # a file whose prompt sits in another field: the error names --text-field, and answer has it
    odd = tmp_path / "odd.jsonl"
    odd.write_text("".join(json.dumps({"task": {"ask": f"synthetic question {i}?"}}) + "\n" for i in range(3)))
    base = [sys.executable, "-m", "dialforge.cli", "answer", "--prompts", str(odd), "--out", str(tmp_path / "p"),
            "--base-url", fake_server.base_url, "--model", "fake-model"]  # fmt: skip
    r = subprocess.run(base, capture_output=True, text=True)
    assert r.returncode == 2 and "odd.jsonl:1: no prompt field" in r.stderr and "--text-field" in r.stderr
    r = subprocess.run([*base, "--text-field", "task.ask"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in (tmp_path / "p/conversations.jsonl").read_text().splitlines()]
    assert [row["messages"][0]["content"] for row in rows] == [f"synthetic question {i}?" for i in range(3)]


def test_call_cache_group_commit_is_durable_without_close(tmp_path):
    """Answers recorded in one loop turn are committed together on the next, including the
    last turn of `asyncio.run`; outside a loop each record commits at once. A second
    connection (what a re-run after kill -9 sees) counts every row and every usage delta."""
    import asyncio
    import sqlite3

    from dialforge.llm import CallCache, Completion
    from dialforge.llm.usage import UsageCounter

    cache = CallCache(tmp_path / "cache.sqlite")

    def comp(i: int) -> Completion:
        return Completion(texts=[f"answer {i}"], finish_reasons=["stop"], model="m")

    def on_disk() -> tuple[int, int]:
        db = sqlite3.connect(tmp_path / "cache.sqlite")
        try:
            rows = db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
            calls = db.execute("SELECT COALESCE(SUM(calls), 0) FROM usage").fetchone()[0]
            return rows, calls
        finally:
            db.close()

    async def one_turn() -> tuple[int, int]:
        for i in range(5):
            cache.record("s", UsageCounter(calls=1), f"{i:064x}", comp(i))
        assert cache.get(f"{3:064x}").text == "answer 3"  # held rows answer at once
        held = on_disk()
        await asyncio.sleep(0)  # one loop turn
        return held

    assert asyncio.run(one_turn()) == (0, 0)
    assert on_disk() == (5, 5)

    async def last_turn() -> None:
        cache.record("s", UsageCounter(calls=1), f"{9:064x}", comp(9))  # the loop ends right after

    asyncio.run(last_turn())
    assert on_disk() == (6, 6)
    cache.record("s", UsageCounter(calls=1, failures=1), None, None)  # no loop: commits at once
    assert on_disk() == (6, 7)
    # a cache opened empty answers what it stored without asking SQLite for what it never stored
    assert cache.get(f"{3:064x}").text == "answer 3" and cache.get(f"{7:064x}") is None
    cache.close()
    again = CallCache(tmp_path / "cache.sqlite")  # opened non-empty: every lookup asks SQLite
    assert again.get(f"{9:064x}").text == "answer 9" and again.get(f"{7:064x}") is None
    again.close()


@pytest.mark.parametrize(
    ("field", "value", "fresh"),
    [("resumes", "x", 1), ("resumes", -3, 1), ("resumes", True, 1), ("models", ["m"], {}), ("models", None, {})],
)
def test_a_manifest_field_of_the_wrong_type_is_reset_with_a_warning(tmp_path, caplog, field, value, fresh):
    """The right fingerprint, a bookkeeping field edited to nonsense: the run resumes (its
    outputs are this config's), the field is reset and said, never a traceback."""
    out = tmp_path / "run"
    with RunDir(out, command="simulate", config={"a": 1}) as run:
        run.store("conversations.jsonl").append({"id": "c1"})
    m = json.loads((out / "manifest.json").read_text())
    m[field] = value
    (out / "manifest.json").write_text(json.dumps(m))
    with RunDir(out, command="simulate", config={"a": 1}) as run:
        assert run.resumed and run.store("conversations.jsonl").ids == {"c1"}
    m = json.loads((out / "manifest.json").read_text())
    assert m[field] == fresh
    assert f"field '{field}' is {value!r}, not what a manifest holds: reset" in caplog.text


def test_a_stage_entry_that_is_no_object_is_checked_again(tmp_path, caplog):
    out = tmp_path / "run"
    with RunDir(out, command="simulate", config={"a": 1}) as run:
        run.stage_done("simulate")
    m = json.loads((out / "manifest.json").read_text())
    m["stages"]["simulate"] = "done"
    (out / "manifest.json").write_text(json.dumps(m))
    with RunDir(out, command="simulate", config={"a": 1}) as run:
        assert not run.is_done("simulate")
    assert "field 'stages.simulate' is not an object" in caplog.text


@pytest.mark.parametrize("where", ["userinfo", "api-key-env"])
def test_a_key_put_where_a_key_does_not_belong_is_never_written(data_dir, fake_server, tmp_path, where):
    """A password in --base-url's userinfo, or a key given to --api-key-env (which wants the
    variable's name): masked in the manifest, run.log, stdout and stderr."""
    key = "sk-live-SECRET-9f8e7d6c5b4a3210"
    out = tmp_path / "run"
    url = fake_server.base_url
    args = ["--model", "fake-model", "--limit", "3", "--out", str(out)]
    if where == "userinfo":
        args += ["--base-url", url.replace("http://", f"http://user:{key}@")]
    else:
        args += ["--base-url", url, "--api-key-env", key]
    prompts = str(data_dir / "oasst/prompt_lottery_en_250_text.jsonl")
    r = subprocess.run(
        [sys.executable, "-m", "dialforge.cli", "answer", "--prompts", prompts, *args], capture_output=True, text=True
    )
    assert key not in r.stdout + r.stderr
    files = dict(_all_bytes(out))
    assert "manifest.json" in {os.path.basename(f) for f in files}
    for f, blob in files.items():
        assert key.encode() not in blob, f
    manifest = json.loads((out / "manifest.json").read_text())
    if where == "userinfo":
        assert manifest["config"]["assistant"]["base_url"] == url.replace("http://", "http://user:***@")
    else:
        assert manifest["config"]["assistant"]["api_key_env"] == "***"


def test_redact_masks_url_passwords_and_keys_in_api_key_env_only():
    from dialforge.llm.redact import looks_like_a_key, redact

    cfg = {
        "a": {"base_url": "http://u:pw-123@h:8000/v1", "api_key_env": "OPENAI_API_KEY"},
        "b": [{"base_url": "https://h/v1", "api_key_env": "sk-abc.def-123"}],
        "note": "user:pass without a scheme stays",
    }
    assert redact(cfg) == {
        "a": {"base_url": "http://u:***@h:8000/v1", "api_key_env": "OPENAI_API_KEY"},
        "b": [{"base_url": "https://h/v1", "api_key_env": "***"}],
        "note": "user:pass without a scheme stays",
    }
    assert not looks_like_a_key("MY_KEY") and looks_like_a_key("sk-proj-abc") and not looks_like_a_key("x-y")


def test_the_tools_offered_are_part_of_the_cache_key():
    """Two requests that differ only in the tools offered are different calls (an agent given
    another tool list must not be answered from the cache); a request without tools keeps the
    key it had before tools existed, so old caches still answer."""
    import hashlib

    import orjson

    from dialforge.llm.cache import _params_json, request_key
    from dialforge.llm.types import ChatRequest

    msgs = [{"role": "user", "content": "synthetic example text"}]
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    plain = ChatRequest(msgs)
    keys = {request_key("m", plain), request_key("m", ChatRequest(msgs, tools=[tool]))}
    keys.add(request_key("m", ChatRequest(msgs, tools=[tool, {**tool, "function": {"name": "book"}}])))
    assert len(keys) == 3
    before = ["m", msgs, _params_json(plain.params), None, 0]
    assert request_key("m", plain) == hashlib.sha256(orjson.dumps(before, option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert request_key("m", ChatRequest(msgs, tools=[])) == request_key("m", plain)
