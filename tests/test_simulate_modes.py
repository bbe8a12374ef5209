"""The seams of self-play: leaf contracts, a pure mode registry that finds the modes other
packages register, configs that load no engine, and a mode with its own parameters added
in one module plus a registration."""

from __future__ import annotations

import ast
import asyncio
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field

from dialforge.conversation import stable_hash
from dialforge.llm import LLM, backend_config
from dialforge.simulate import Engine, SimulateConfig, load_seeds, make_simulator
from dialforge.simulate import modes as modes_module
from dialforge.simulate.config import SeedConfig
from dialforge.simulate.contracts import ConvState, UserTurn, sample_index
from dialforge.simulate.engine import Seed
from dialforge.simulate.modes import SimulateModeConfig, SimulatorMode, get_mode, mode_names, register_mode
from dialforge.testing import ScriptedChatModel

SRC = Path(__file__).resolve().parents[1] / "src" / "dialforge"
_MODULES = {
    ".".join(["dialforge", *p.relative_to(SRC).with_suffix("").parts]).removesuffix(".__init__")
    for p in SRC.rglob("*.py")
}

# what a config module must never load (the engine, its cache, client, readers, the loops)
ENGINE = {
    "dialforge.simulate.engine",
    "dialforge.simulate.simulators",
    "dialforge.simulate.run",
    "dialforge.run.kernel",
    "dialforge.llm.cache",
    "dialforge.llm.client",
    "dialforge.io.reader",
    "dialforge.io.registry",
    "dialforge.workflows.agent",
    "dialforge.workflows.selftalk",
    "dialforge.agentic.policy",
}


def _loaded_by(code: str) -> list[str]:
    r = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return [m for m in json.loads(r.stdout.splitlines()[-1]) if m.startswith("dialforge")]


@pytest.mark.parametrize(
    "module", ["dialforge.simulate.config", "dialforge.workflows.config", "dialforge.agentic.config"]
)
def test_importing_a_config_loads_no_engine_module(module):
    loaded = _loaded_by(f"import {module}")
    assert module in loaded
    assert sorted(ENGINE & set(loaded)) == []


def test_the_registry_finds_every_packages_modes_by_name_and_builds_none():
    """The first lookup imports the providers by name (simulate/ imports no workflows/ or
    agentic/ module), in their order; registering a mode imports no simulator."""
    code = (
        "from dialforge.simulate.modes import mode_names, get_mode\nprint(mode_names(), get_mode('agentic').commands)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "['strategy', 'socratic', 'persona', 'selftalk', 'agentic'] ('agent',)"
    loaded = _loaded_by("from dialforge.simulate.modes import mode_names\nmode_names()")
    assert "dialforge.workflows.modes" in loaded and "dialforge.agentic.modes" in loaded
    assert sorted(ENGINE & set(loaded)) == []


def _imported_modules(path: Path) -> set[str]:
    """Every dialforge module a file names in an import statement, in functions and under
    TYPE_CHECKING too (absolute dotted names)."""
    pkg = ["dialforge", *path.relative_to(SRC).parent.parts]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = pkg[: len(pkg) - node.level + 1] if node.level else []
            target = ".".join([*base, *([node.module] if node.module else [])])
            subs = {f"{target}.{a.name}" for a in node.names} & _MODULES
            out.update(subs or {target})
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m.startswith("dialforge")}


def test_simulate_never_imports_the_packages_built_on_it():
    for path in sorted((SRC / "simulate").glob("*.py")):
        upward = sorted(
            m for m in _imported_modules(path) if m.startswith(("dialforge.workflows", "dialforge.agentic"))
        )
        assert upward == [], f"{path.name} imports {upward}"


def test_the_contracts_are_a_leaf():
    allowed = {"dialforge.llm", "dialforge.llm.types", "dialforge.simulate", "dialforge.simulate.reasons"}
    assert _imported_modules(SRC / "simulate" / "contracts.py") <= allowed
    loaded = _loaded_by("import dialforge.simulate.contracts")
    assert sorted(m for m in loaded if m not in {"dialforge", "dialforge._lazy", "dialforge._version"}) == [
        "dialforge.simulate",
        "dialforge.simulate.contracts",
    ]


def test_old_import_paths_name_the_same_objects():
    from dialforge.simulate import contracts, policies, simulators
    from dialforge.workflows import config as wf_config
    from dialforge.workflows import tracker

    simulate = importlib.import_module("dialforge.simulate")  # `dialforge.simulate` is the command
    workflows = importlib.import_module("dialforge.workflows")
    selftalk = importlib.import_module("dialforge.workflows.selftalk")  # `workflows.selftalk` too
    assert simulators.ConvState is contracts.ConvState is simulate.ConvState
    assert simulators.UserTurn is contracts.UserTurn and simulators.sample_index is contracts.sample_index
    assert simulators.UserSimulator is contracts.UserSimulator
    assert policies.AssistantTurn is contracts.AssistantTurn and policies.AssistantPolicy is contracts.AssistantPolicy
    assert policies.completion_meta is contracts.completion_meta
    assert simulate.make_simulator is modes_module.make_simulator
    assert workflows.SelfTalkConfig is selftalk.SelfTalkConfig is wf_config.SelfTalkConfig
    assert workflows.FilterSpec is selftalk.FilterSpec is wf_config.FilterSpec
    assert tracker.DEFAULT_ORDER == wf_config.DEFAULT_ORDER == "any" and tracker.THRESHOLD == workflows.THRESHOLD


def test_the_sample_index_rule():
    state = ConvState(conv_id="0000000a" + "f" * 56, messages=[], sample=0, user_turns=2)
    assert sample_index(state) == (10 << 16) + 128
    state.attempt = 1
    assert sample_index(state, 3) == (10 << 16) + 128 + 3 + 8


def test_a_mode_registered_twice_is_refused_and_an_unknown_one_names_the_commands_modes():
    with pytest.raises(ValueError, match="simulator mode 'persona' is already registered"):
        register_mode(SimulatorMode("persona", "again", lambda cfg, llm, judge: None))  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError, match=r"unknown simulator mode 'agentic' \(known: selftalk\)"):
        get_mode("agentic", "selftalk")


class ScriptOptions(BaseModel):
    """The script mode's own parameters (`options:` in a simulate config or a pipeline simulator)."""

    model_config = ConfigDict(extra="forbid")
    questions: list[str] = Field(min_length=1, description="asked in order, one per user turn")
    repeat: bool = Field(True, description="start again after the last question")


class ScriptUser:
    """A mode with its own parameters in one module and one registration: the user asks
    `options.questions`, in order (a builder reads the config through its protocol)."""

    def __init__(self, llm: LLM, opts: ScriptOptions) -> None:
        self.model_id = llm.model_id
        self.opts = opts

    async def next_turn(self, state: ConvState) -> UserTurn:
        qs = self.opts.questions
        if state.user_turns >= len(qs) and not self.opts.repeat:
            return UserTurn(stop="end_signal")
        return UserTurn(text=qs[state.user_turns % len(qs)], meta={"scripted": True})


def _build_script(cfg: SimulateModeConfig, llm: LLM, judge: LLM | None) -> ScriptUser:
    return ScriptUser(llm, SCRIPT.options_of(cfg))


SCRIPT = SimulatorMode[SimulateModeConfig]("script", "a test mode", _build_script, options=ScriptOptions)


def test_a_mode_with_its_own_options_is_one_registration(monkeypatch):
    monkeypatch.setattr(modes_module, "_MODES", dict(modes_module.registry()))
    register_mode(SCRIPT)
    assert mode_names("simulate") == ["strategy", "socratic", "persona", "script"]
    base = dict(mode="script", seeds={"free": 1}, user=backend_config(model="u"), assistant=backend_config(model="a"))
    with pytest.raises(ValueError, match=r"questions: Field required \(mode script's options: questions, repeat\)"):
        SimulateConfig(**base, options={})
    with pytest.raises(
        ValueError,
        match=r"questions: Field required; questoins: unknown option \(mode script's options: questions, repeat\)",
    ):
        SimulateConfig(**base, options={"questoins": ["x"]})
    with pytest.raises(ValueError, match="mode persona takes no options"):
        SimulateConfig(**{**base, "mode": "persona"}, personas=["p"], options={"questions": ["x"]})
    questions = ["How is green tea made?", "Which coffee beans taste the most bitter, and why is that so?"]
    cfg = SimulateConfig(**base, options={"questions": questions}, max_turns=2)
    assert cfg.options == {"questions": questions, "repeat": True}  # checked, defaults filled
    sim = make_simulator(cfg, LLM(ScriptedChatModel(lambda r: "unused", "u")))
    assert isinstance(sim, ScriptUser) and sim.opts.questions == questions
    asst = ScriptedChatModel(lambda r: "An answer about drinks and plants.", "a")
    conv = asyncio.run(Engine(cfg, sim, LLM(asst)).run_one("0" * 64, Seed("s", []), 0))
    assert [m.content for m in conv.messages if m.role == "user"] == questions
    assert conv.meta["mode"] == "script" and conv.meta["termination_reason"] == "max_turns"
    assert conv.meta["simulator_model"] == "u" and conv.messages[0].meta == {"scripted": True}


def test_options_unset_leave_the_fingerprint_as_it_was():
    """`options:` came after runs were made: unset, it is not in the fingerprint, so earlier
    runs resume and keep their conversation ids; set, it is."""
    from dialforge.config import fingerprint_data

    base = dict(mode="persona", personas=["p"], seeds={"free": 1}, user=backend_config(model="u"))
    fp = fingerprint_data(SimulateConfig(**base, assistant=backend_config(model="a")))
    assert "options" not in fp and "personas" in fp
    fp_set = fingerprint_data(SimulateConfig(**base, assistant=backend_config(model="a"), options=None))
    assert fp_set == fp


def test_seeds_are_deduplicated_across_files_and_a_limit_names_the_files_it_leaves_out(tmp_path, caplog):
    q1, q2, q3 = tmp_path / "q1.txt", tmp_path / "q2.txt", tmp_path / "q3.txt"
    q1.write_text("Why is the sky blue?\nHow do tides work?\nWhy is the sky blue?\n")
    q2.write_text("How do tides work?\nWhat makes bread rise?\n")
    q3.write_text("Why is the sky blue?\n")  # only seeds seen before: never "left out"
    files = [str(q1), str(q2), str(q3)]
    seeds = load_seeds(SeedConfig(questions=files, free=1))
    topics = ["Why is the sky blue?", "How do tides work?", "What makes bread rise?"]
    assert [s.topic for s in seeds] == [*topics, None]
    assert [s.id for s in seeds] == [*(stable_hash("q", t) for t in topics), stable_hash("free", 0)]
    with caplog.at_level("WARNING", logger="dialforge.simulate"):
        seeds = load_seeds(SeedConfig(questions=files, limit=2))
    assert [s.topic for s in seeds] == topics[:2]
    assert [r.getMessage() for r in caplog.records] == [
        f"seeds: limit 2 is reached before {q2}, so none of its seeds is used"
    ]
