"""Every malformed input a user can type or point us at: one line naming where (file:line,
field, command, URL), exit 2, never a traceback. Each row runs the installed console script."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from dialforge.testing import FakeOpenAIServer

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ROOT / "data" / "oasst" / "prompt_lottery_en_250_text.jsonl"


@dataclass
class Ctx:
    tmp: Path
    stack: contextlib.ExitStack
    tiny_model: Path
    env: dict[str, str]

    def write(self, name: str, data: str | bytes) -> str:
        p = self.tmp / name
        p.write_bytes(data.encode() if isinstance(data, str) else data)
        return str(p)

    def server(self, *faults: tuple[str, int]) -> FakeOpenAIServer:
        srv = self.stack.enter_context(FakeOpenAIServer())
        for kind, times in faults:
            srv.inject(kind, times)
        return srv


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


def _sim_config(c: Ctx, url: str, **backend) -> str:
    b = {"base_url": url, "connect_retry_s": 0.5, **backend}
    cfg = {
        "mode": "socratic",
        "seeds": {"questions": [str(QUESTIONS)], "limit": 3},
        "user": {"model": "sim", **b},
        "assistant": {"model": "asst", **b},
        "max_turns": 2,
    }
    return c.write("sim.yaml", yaml.safe_dump(cfg))


def _simulate(cfg: str, c: Ctx) -> list[str]:
    return ["simulate", "--config", cfg, "--out", str(c.tmp / "out")]


_DIALOGUE = json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]})
_LABELLED = {"id": "r1", "history": [], "instruction": "Tell me more.", "strategy_text": "ask for depth"}


def _train_labelled(c: Ctx, text: str) -> list[str]:
    data = c.write("labelled.jsonl", text)
    out = str(c.tmp / "t")
    return ["train", "simulator", "--strategy-conditioned", "--data", data, "--model", str(c.tiny_model), "--out", out]


def _api_key_401(c: Ctx) -> tuple[list[str], list[str]]:
    c.env["DF_BAD_INPUT_KEY"] = "sk-never-print-me-123456"
    srv = c.server(("401", 50))
    cfg = _sim_config(c, srv.base_url, api_key_env="DF_BAD_INPUT_KEY")
    return _simulate(cfg, c), [srv.base_url, "HTTP 401", "$DF_BAD_INPUT_KEY"]


_WORKFLOW = """name: order_tea
topic: order a cup of tea (synthetic)
agent: tea shop clerk
start: greet
steps:
  greet:
    say: Hello, what can I get you?
    options:
      - {answer: A green tea please, end: Here is your green tea. Goodbye!}
"""


def _selftalk_dead(c: Ctx) -> tuple[list[str], list[str]]:
    url = _closed_port_url()
    b = {"base_url": url, "connect_retry_s": 0.5}
    wf = c.tmp / "wf"
    wf.mkdir()
    (wf / "order_tea.yaml").write_text(_WORKFLOW)
    cfg = {"workflows": str(wf), "client": {"model": "c", **b}, "agent": {"model": "a", **b}, "max_turns": 2}
    path = c.write("st.yaml", yaml.safe_dump(cfg))
    return ["selftalk", "--config", path, "--out", str(c.tmp / "st")], [url, "cannot connect"]


# (id, case) -> the command line and what the one line must name
Case = Callable[[Ctx], tuple[list[str], list[str]]]
CASES: dict[str, Case] = {
    # --- command-line usage
    "unknown option": lambda c: (["convert", "a", "b", "--bogus"], ["dialforge convert", "--bogus"]),
    "missing argument": lambda c: (["convert"], ["dialforge convert", "Missing argument 'SRC'"]),
    "unknown command": lambda c: (["simulat"], ["dialforge", "No such command 'simulat'"]),
    "unknown subcommand": lambda c: (["eval", "mtbench"], ["dialforge eval", "mtbench"]),
    "option without its value": lambda c: (["stats", "x.jsonl", "--tokenizer"], ["dialforge stats", "--tokenizer"]),
    "flag given a value": lambda c: (["stats", "x.jsonl", "--json=yes"], ["dialforge stats", "--json"]),
    "number option given text": lambda c: (
        ["simulate", "--config", "c.yaml", "--out", "o", "--limit", "many"],
        ["dialforge simulate", "Invalid value for '--limit'"],
    ),
    "bad train kind": lambda c: (["train", "critic", "--data", "d.jsonl"], ["train", "simulator or chat", "critic"]),
    # --- YAML configs
    "config not found": lambda c: (_simulate(str(c.tmp / "nope.yaml"), c), ["nope.yaml", "not found"]),
    "config is a folder": lambda c: (_simulate(str(c.tmp), c), [str(c.tmp), "is a directory"]),
    "YAML syntax error": lambda c: (
        _simulate(c.write("s.yaml", "mode: socratic\nseeds: {free: 2\nmax_turns: 3\n"), c),
        ["s.yaml:3:", "invalid YAML"],
    ),
    "YAML tab indentation": lambda c: (
        _simulate(c.write("t.yaml", "mode: persona\n\tmax_turns: 2\n"), c),
        ["t.yaml:2:"],
    ),
    "binary config": lambda c: (_simulate(c.write("b.yaml", bytes(range(256)) * 4), c), ["b.yaml", "offset 128"]),
    "config with NUL bytes": lambda c: (
        _simulate(c.write("n.yaml", b"mode: socratic\nmax_turns: \x00\x07\n"), c),
        ["n.yaml:2:", "binary"],
    ),
    "UTF-16 config is read (then its bad field named)": lambda c: (
        _simulate(c.write("u16.yaml", "mode: socratic\nseeds: {free: 2}\nmax_turnz: 3\n".encode("utf-16")), c),
        ["u16.yaml", "field 'max_turnz'", "unknown field"],
    ),
    "config not a mapping": lambda c: (_simulate(c.write("l.yaml", "- a\n- b\n"), c), ["l.yaml", "mapping"]),
    "config field of the wrong type": lambda c: (
        _simulate(c.write("w.yaml", "mode: socratic\nseeds: {free: 2}\nmax_turns: many\n"), c),
        ["w.yaml", "field 'max_turns'"],
    ),
    "workflow YAML syntax error": lambda c: (
        ["workflows", "show", c.write("wf.yaml", "name: x\nsteps:\n  - id: a\n    say: [unclosed\n")],
        ["wf.yaml:", "invalid YAML in workflow file"],
    ),
    # --- training inputs
    "strategy-conditioned on plain dialogues": lambda c: (
        _train_labelled(c, _DIALOGUE + "\n"),
        ["labelled.jsonl:1", "field 'id'", "missing"],
    ),
    "strategy-conditioned on unlabelled records": lambda c: (
        _train_labelled(c, json.dumps({k: v for k, v in _LABELLED.items() if k != "strategy_text"}) + "\n"),
        ["labelled.jsonl:1", "field 'strategy_text'", "strategies assign"],
    ),
    "strategy-conditioned broken JSON line": lambda c: (
        _train_labelled(c, json.dumps(_LABELLED) + "\n{not json\n"),
        ["labelled.jsonl:2", "broken JSON"],
    ),
    "strategy-conditioned bad history message": lambda c: (
        _train_labelled(c, json.dumps({**_LABELLED, "history": [{"role": "user", "content": 5}]}) + "\n"),
        ["labelled.jsonl:1", "field 'history[0]'"],
    ),
    # --- backends: the first requests of a stage fail, the stage stops with the reason
    "server not running": lambda c: (lambda url: (_simulate(_sim_config(c, url), c), [url, "cannot connect"]))(
        _closed_port_url()
    ),
    "unknown host": lambda c: (
        _simulate(_sim_config(c, "http://no-such-host.invalid/v1"), c),
        ["no-such-host.invalid", "cannot resolve host"],
    ),
    "TLS to a plain-HTTP server": lambda c: (lambda url: (_simulate(_sim_config(c, url), c), [url, "TLS"]))(
        c.server().base_url.replace("http://", "https://")
    ),
    "API key refused": _api_key_401,
    "model not found": lambda c: (
        lambda srv: (_simulate(_sim_config(c, srv.base_url), c), [srv.base_url, "HTTP 404", "not found"])
    )(c.server(("404", 50))),
    "in-process model folder missing": lambda c: (
        ["answer", "--model", str(c.tmp / "no-model"), "--prompts", str(QUESTIONS), "--out", str(c.tmp / "a")],
        ["no-model", "no such folder"],
    ),
    "in-process model that cannot load": lambda c: (
        ["answer", "--model", str(c.tmp), "--prompts", str(QUESTIONS), "--limit", "2", "--out", str(c.tmp / "a")],
        [f"cannot load model '{c.tmp}'"],
    ),
    "selftalk against a dead server": lambda c: _selftalk_dead(c),
    "induce against a dead server": lambda c: (
        lambda url: (
            ["induce", "--dialogues", str(ROOT / "data/oasst/en_100_tree.jsonl"), "--max-dialogues", "5"]
            + ["--model", "m", "--base-url", url, "--out", str(c.tmp / "i")],
            [url, "cannot connect"],
        )
    )(_closed_port_url()),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_exit_2(name, tmp_path, tiny_model_dir, dialforge_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with contextlib.ExitStack() as stack:
        c = Ctx(tmp_path, stack, tiny_model_dir, {**os.environ, "HF_HUB_OFFLINE": "1"})
        args, expected = CASES[name](c)
        r = subprocess.run([*dialforge_cli, *args], capture_output=True, text=True, env=c.env, timeout=300)
    err = r.stderr
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(("WARNING", "Loading weights"))]
    assert r.returncode == 2, err[-3000:]
    assert "Traceback" not in err
    assert len(lines) == 1, err[-3000:]
    assert lines[0].startswith("error: "), lines[0]
    for piece in expected:
        assert piece in lines[0], (piece, lines[0])
    assert "sk-never-print-me" not in err + r.stdout
