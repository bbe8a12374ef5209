"""Typed backends, the backend pool, fingerprints by marker and content, `--set`, shared
backend flags and validation before the first model request."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from dialforge.config import ConfigError, content_hash, field_help, fingerprint_data, load_config, parse_set
from dialforge.llm import (
    BackendConfig,
    BackendPool,
    HTTPBackendConfig,
    ScriptedBackendConfig,
    TransformersBackendConfig,
    backend_config,
)
from dialforge.run import RunDir, config_fingerprint
from dialforge.simulate import SimulateConfig, simulate_async
from dialforge.testing import FakeOpenAIServer, ScriptedChatModel

ROOT = Path(__file__).resolve().parents[1]


class _Roles(BaseModel):
    user: BackendConfig


# -- typed backends -----------------------------------------------------------------------------


def test_backend_kind_from_kind_or_old_yaml():
    assert type(_Roles(user={"model": "m", "base_url": "http://h/v1"}).user) is HTTPBackendConfig
    assert type(_Roles(user={"model": "/models/x", "batch_size": 4}).user) is TransformersBackendConfig
    assert type(_Roles(user={"kind": "scripted", "replies": ["hi"]}).user) is ScriptedBackendConfig
    assert type(backend_config(model="m", base_url="http://u/v1")) is HTTPBackendConfig
    assert type(backend_config({"model": "m"})) is TransformersBackendConfig


def test_backend_errors_name_the_field_without_the_union_tag(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("user: {model: m, max_concurrency: 4}\n")
    with pytest.raises(ConfigError) as e:
        load_config(_Roles, cfg)
    assert str(e.value) == (
        f"{cfg}: field 'user.max_concurrency': unknown field for a transformers backend (HTTP options need base_url)"
    )
    cfg.write_text("user: {kind: vllm, model: m}\n")
    with pytest.raises(ConfigError, match=r"field 'user': unknown backend kind \(known: http, transformers, scripted"):
        load_config(_Roles, cfg)


def test_backend_kinds_derive_from_the_config_union_and_each_has_a_builder():
    from dialforge.llm.config import BACKEND_KINDS
    from dialforge.llm.pool import BUILDERS

    assert list(BACKEND_KINDS) == ["http", "transformers", "scripted"]
    assert {k: cls.model_fields["kind"].default for k, cls in BACKEND_KINDS.items()} == {k: k for k in BACKEND_KINDS}
    assert set(BUILDERS) == set(BACKEND_KINDS)


def test_scripted_backend_from_yaml_replies_in_order():
    from dialforge.llm.pool import make_backend

    backend = make_backend(backend_config(kind="scripted", replies=["one", "two"]))
    assert isinstance(backend, ScriptedChatModel)
    from dialforge.llm import LLM

    llm = LLM(backend)
    texts = [asyncio.run(llm.complete([{"role": "user", "content": q}])).text for q in ("a", "b")]
    assert texts == ["one", "two"]


# -- the pool -------------------------------------------------------------------------------------


def test_pool_one_backend_per_endpoint_and_closes_what_it_built(fake_server):
    injected = ScriptedChatModel(["x"], "judge")
    user = backend_config(model="m", base_url=fake_server.base_url, params={"temperature": 1.0})
    assistant = backend_config(model="m", base_url=fake_server.base_url, system_prompt="be brief")
    other = backend_config(model="m", base_url=fake_server.base_url, max_concurrency=2)

    async def go():
        async with BackendPool({"judge": injected}) as pool:
            a, b, c = pool.get(user), pool.get(assistant), pool.get(other)
            assert a is b and a is not c and len(pool) == 2
            assert pool.get(backend_config(model="judge", base_url="http://elsewhere/v1")) is injected
            from dialforge.llm import LLM

            await LLM(a).complete([{"role": "user", "content": "hello"}])
            assert a._session is not None
        return a

    a = asyncio.run(go())
    assert a._session is None  # closed by the pool
    assert fake_server.served == 1


def test_simulate_roles_on_one_endpoint_share_the_injected_pool(fake_server, data_dir, tmp_path):
    cfg = SimulateConfig(
        mode="socratic",
        seeds={"questions": [str(data_dir / "oasst/prompt_lottery_en_250_text.jsonl")], "limit": 3},
        max_turns=2,
        user=backend_config(model="m", base_url=fake_server.base_url, params={"temperature": 0.9}),
        assistant=backend_config(model="m", base_url=fake_server.base_url),
    )

    async def go():
        async with BackendPool() as pool:
            summary = await simulate_async(cfg, tmp_path / "sim", progress=False, pool=pool)
            return summary, len(pool)

    summary, built = asyncio.run(go())
    assert summary["conversations"] == 3 and built == 1


# -- fingerprints -----------------------------------------------------------------------------------


def _sim(seed_file: Path, url: str, **kw) -> SimulateConfig:
    return SimulateConfig(
        mode="socratic",
        seeds={"questions": [str(seed_file)]},
        user=backend_config(model="m", base_url=url, **kw),
        assistant=backend_config(model="m", base_url=url),
    )


def test_fingerprint_ignores_operational_fields_and_paths_but_not_contents(tmp_path):
    seeds = tmp_path / "a" / "seeds.txt"
    seeds.parent.mkdir()
    seeds.write_text("How do I start running?\n")
    base = config_fingerprint(_sim(seeds, "http://127.0.0.1:8000/v1"))
    # a new port, other retries and concurrency: the same run
    same = _sim(seeds, "http://127.0.0.1:9999/v1", max_retries=1, max_concurrency=3, api_key_env="K")
    assert config_fingerprint(same.model_copy(update={"concurrency": 5})) == base
    # the checkout moved: same content, other absolute path
    moved = tmp_path / "b" / "renamed.txt"
    moved.parent.mkdir()
    shutil.copy(seeds, moved)
    assert config_fingerprint(_sim(moved, "http://127.0.0.1:8000/v1")) == base
    # what the run reads changed: another config
    moved.write_text("How do I start swimming?\n")
    assert config_fingerprint(_sim(moved, "http://127.0.0.1:8000/v1")) != base
    # what the model is asked changed: another config
    assert config_fingerprint(_sim(seeds, "http://127.0.0.1:8000/v1", params={"temperature": 0.1})) != base
    data = fingerprint_data(_sim(seeds, "http://x/v1"))
    assert "base_url" not in data["user"] and "concurrency" not in data
    assert data["seeds"]["questions"] == [f"sha256:{content_hash(seeds)[:32]}"]


def test_a_new_server_port_resumes_the_run(tmp_path, data_dir):
    seeds = data_dir / "oasst/prompt_lottery_en_250_text.jsonl"
    with RunDir(tmp_path / "r", command="simulate", config=_sim(seeds, "http://127.0.0.1:1/v1")) as run:
        assert not run.resumed
    with RunDir(tmp_path / "r", command="simulate", config=_sim(seeds, "http://127.0.0.1:2/v1")) as run:
        assert run.resumed


def test_folder_hash_covers_names_and_contents(tmp_path):
    (tmp_path / "wf").mkdir()
    (tmp_path / "wf" / "a.yaml").write_text("x: 1\n")
    h = content_hash(tmp_path / "wf")
    (tmp_path / "wf" / "b.yaml").write_text("x: 1\n")
    assert content_hash(tmp_path / "wf") != h
    assert content_hash(tmp_path / "missing") is None


# -- overrides and help --------------------------------------------------------------------------------


def test_parse_set_values_are_yaml():
    assert parse_set(["a.b=3", "c=[x, y]", "d=null", "e=http://h:1/v1", "f="]) == {
        "a.b": 3,
        "c": ["x", "y"],
        "d": None,
        "e": "http://h:1/v1",
        "f": "",
    }
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_set(["max_turns"])


def test_set_reaches_list_items_and_null(tmp_path):
    from dialforge.pipeline import PipelineConfig

    cfg = load_config(
        PipelineConfig,
        ROOT / "examples/quickstart.yaml",
        sets=parse_set(["simulate.simulators.0.strategy.candidates=7", "dedup=null", "simulate.max_turns=5"]),
    )
    assert cfg.simulate.simulators[0].strategy.candidates == 7  # type: ignore[union-attr]
    assert cfg.dedup is None and cfg.simulate.max_turns == 5
    with pytest.raises(ConfigError, match="not an index"):
        load_config(PipelineConfig, ROOT / "examples/quickstart.yaml", sets={"simulate.simulators.9.name": "x"})


def test_help_text_comes_from_field_descriptions(cli):
    assert field_help(SimulateConfig, "seeds.limit") == "use only the first N seeds from files"
    r = cli("simulate", "--help")
    assert r.returncode == 0
    assert "use only the first N seeds" in " ".join(r.stdout.split())
    assert "--set" in r.stdout and "--base-url" in r.stdout


def test_simulate_shared_backend_flags_and_set(data_dir, tmp_path, cli):
    cfg = tmp_path / "sim.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "mode": "socratic",
                "seeds": {"questions": [str(data_dir / "oasst/prompt_lottery_en_250_text.jsonl")], "limit": 2},
                "user": {"model": "placeholder"},
                "assistant": {"model": "placeholder"},
            }
        )
    )
    with FakeOpenAIServer() as srv:
        r = cli(
            "simulate", "--config", str(cfg), "--out", str(tmp_path / "o"),
            "--base-url", srv.base_url, "--model", "served", "--set", "max_turns=2",
        )  # fmt: skip
        models = {req["model"] for req in srv.requests}
    assert r.returncode == 0, r.stderr
    assert models == {"served"}
    manifest = json.loads((tmp_path / "o/manifest.json").read_text())
    assert manifest["models"] == {"user": "served", "assistant": "served"}
    assert manifest["config"]["max_turns"] == 2 and manifest["config"]["user"]["kind"] == "http"


# -- validation before the first request ----------------------------------------------------------------


def _pipeline_yaml(tmp_path: Path, data_dir: Path, **over) -> Path:
    cfg = yaml.safe_load((ROOT / "examples/quickstart.yaml").read_text())
    cfg["induce"]["dialogues"] = [str(data_dir / "oasst/en_100_tree.jsonl")]
    cfg["simulate"]["seeds"]["questions"] = [str(data_dir / "oasst/prompt_lottery_en_250_text.jsonl")]
    cfg.update(over)
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"filter": "user_turnz >= 1"},
            "field 'filter': filter expression 'user_turnz >= 1': unknown name 'user_turnz'",
        ),
        (
            {"filter": "user_turns >="},
            "field 'filter': filter expression 'user_turns >=': syntax error at the end (column 14) (invalid syntax)",
        ),
        (
            {"library": "nowhere/library.json", "induce": None},
            "field 'library': nowhere/library.json: no such file or folder",
        ),
        ({"induce": None}, "simulate.simulators.0 (strategy): a strategy simulator needs `induce:`"),
    ],
)
def test_pipeline_config_errors_before_any_request(tmp_path, data_dir, change, message, cli):
    path = _pipeline_yaml(tmp_path, data_dir, **change)
    with FakeOpenAIServer() as srv:
        r = cli("run", str(path), "--out", str(tmp_path / "o"), "--base-url", srv.base_url, "--model", "m")
        served = srv.served
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and str(path) in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and served == 0


def test_an_unknown_simulator_mode_fails_before_any_request(tmp_path, data_dir, cli):
    path = _pipeline_yaml(tmp_path, data_dir)
    cfg = yaml.safe_load(path.read_text())
    cfg["simulate"]["simulators"].append({"name": "odd", "mode": "telepathic"})
    path.write_text(yaml.safe_dump(cfg))
    r = cli("run", str(path), "--out", str(tmp_path / "o"), "--base-url", "http://127.0.0.1:9/v1", "--model", "m")
    assert r.returncode == 2
    assert f"{path}: field 'simulate.simulators.3.mode'" in r.stderr and "'telepathic'" in r.stderr
    assert not (tmp_path / "o").exists()


def test_an_unknown_reader_format_fails_before_the_run_directory_exists(tmp_path, data_dir, cli):
    """A typo in `induce.format` used to fail after the run directory (and its pipeline.json)
    was made, so the fixed config was refused as "a different config"."""
    path = _pipeline_yaml(tmp_path, data_dir)
    cfg = yaml.safe_load(path.read_text())
    cfg["induce"]["format"] = "oasts"
    path.write_text(yaml.safe_dump(cfg))
    r = cli("run", str(path), "--out", str(tmp_path / "o"), "--base-url", "http://127.0.0.1:9/v1", "--model", "m")
    assert r.returncode == 2
    assert r.stderr.startswith(f"error: {path}: field 'induce.format': unknown format 'oasts' (expected one of auto,")
    assert not (tmp_path / "o").exists()


def test_errors_in_set_values_name_the_set_not_the_file(tmp_path, data_dir, cli):
    path = _pipeline_yaml(tmp_path, data_dir)
    out = str(tmp_path / "o")
    r = cli("run", str(path), "--out", out, "--model", "m", "--set", "simulate.max_turn=2")
    assert r.returncode == 2
    assert r.stderr == (
        "error: --set simulate.max_turn: field 'simulate.max_turn': unknown field (did you mean simulate.max_turns?)\n"
    )
    r = cli("run", str(path), "--out", out, "--model", "m", "--set", "simulate.max_turns=0", "--set", "induce.nope=1")
    assert r.stderr == (
        "error: --set induce.nope: field 'induce.nope': unknown field (did you mean induce.model?); "
        "--set simulate.max_turns: field 'simulate.max_turns': Input should be greater than or equal to 1\n"
    )
    # values checked after the schema (input files, the filter) are blamed on the --set too
    r = cli("run", str(path), "--out", out, "--set", "filter=user_turns >=", "--set", "induce.dialogues=[nofile.jsonl]")
    assert (
        r.stderr == "error: --set induce.dialogues: field 'induce.dialogues[0]': nofile.jsonl: no such file or folder\n"
    )
    r = cli("run", str(path), "--out", out, "--set", "filter=user_turns >=")
    assert r.stderr.startswith("error: --set filter: field 'filter': filter expression 'user_turns >=': syntax error")
    # the pipeline copies `model` into `induce.model`: the one bad value is one error, not two
    r = cli("run", str(path), "--out", out, "--set", "model.params.temperature=hot")
    assert r.stderr.startswith("error: --set model.params.temperature: field 'model.params.temperature': ")
    assert "induce.model" not in r.stderr and r.stderr.count("field '") == 1
    assert not (tmp_path / "o").exists()


def test_a_train_stage_without_the_train_extra_fails_before_any_request(tmp_path, data_dir, cli, monkeypatch):
    for name in ("trl", "peft", "accelerate"):
        monkeypatch.setitem(sys.modules, name, None)  # as on a base install
    path = _pipeline_yaml(tmp_path, data_dir, train={"kind": "chat"})
    r = cli("run", str(path), "--out", str(tmp_path / "o"), "--base-url", "http://127.0.0.1:9/v1", "--model", "m")
    assert r.returncode == 2
    assert r.stderr.startswith(f"error: {path}: field 'train': dialforge train needs trl, peft, accelerate")
    assert not (tmp_path / "o").exists()


def test_model_dialforge_tiny_alone_replaces_a_configured_server():
    """`--model NAME` alone on a config whose role names a server is the name that server
    serves; the tiny model is never served, so it replaces the role with the in-process one."""
    from dialforge.cli import backend_overrides

    example = ROOT / "examples/persona.yaml"
    tiny = load_config(SimulateConfig, example, backend_overrides("user", "dialforge-tiny", None, None))
    assert (tiny.user.kind, tiny.user.model) == ("transformers", "dialforge-tiny")
    assert tiny.assistant.kind == "http"  # the other role keeps its server
    served = load_config(SimulateConfig, example, backend_overrides("user", "served-name", None, None))
    assert (served.user.kind, served.user.model, served.user.base_url) == (
        "http",
        "served-name",
        "http://localhost:8000/v1",
    )


def test_unreadable_seed_names_the_field(tmp_path, data_dir, cli):
    path = _pipeline_yaml(tmp_path, data_dir)
    cfg = yaml.safe_load(path.read_text())
    cfg["simulate"]["seeds"]["questions"].append("missing-seeds.jsonl")
    path.write_text(yaml.safe_dump(cfg))
    r = cli("run", str(path), "--out", str(tmp_path / "o"), "--base-url", "http://127.0.0.1:9/v1", "--model", "m")
    assert r.returncode == 2
    assert "field 'simulate.seeds.questions[1]': missing-seeds.jsonl: no such file or folder" in r.stderr


# -- the sync API in a notebook ---------------------------------------------------------------------------


def test_sync_api_inside_a_running_event_loop(fake_server, data_dir, tmp_path):
    import dialforge

    cfg = dialforge.AnswerConfig(
        prompts=[str(data_dir / "oasst/prompt_lottery_en_250_text.jsonl")],
        assistant=backend_config(model="m", base_url=fake_server.base_url),
        limit=3,
    )

    async def notebook_cell():  # a cell runs inside the kernel's event loop
        return dialforge.answer(cfg, tmp_path / "a", progress=False)

    assert asyncio.run(notebook_cell())["answered_now"] == 3


def test_an_embedded_model_on_the_command_line_replaces_the_server_but_keeps_the_sampling():
    """`--model smollm2-135m` on a config whose role names a server: the role runs in-process
    (the server fields go) with the config's own params and system prompt (they were dropped,
    so answers ran to the stage default of 512 tokens)."""
    from dialforge.cli import backend_overrides
    from dialforge.workflows.selftalk import SelfTalkConfig

    ov = {**backend_overrides("client", "smollm2-135m", None, None), **backend_overrides("agent", "x/y", None, None)}
    cfg = load_config(SelfTalkConfig, ROOT / "examples/selftalk.yaml", ov)
    assert cfg.client.kind == "transformers" and cfg.client.model == "smollm2-135m"
    assert cfg.client.params.max_tokens == 100 and cfg.client.params.top_k == 50  # the example's decoding
    assert cfg.agent.kind == "http" and cfg.agent.model == "x/y"  # not embedded: the name that server serves
