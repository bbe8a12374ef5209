"""examples/trained_vs_prompted.yaml: `train_simulator` -> trained simulators (seeded, free) next to
prompted ones and the strategy simulator -> realism cards -> "closest to real users" in the report."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "trained_vs_prompted.yaml"
SIMS = ("trained", "trained_free", "socratic", "persona", "strategy")
# what a dyadic or chat template puts around a turn: none of it may reach a conversation's text
TEMPLATE_TOKENS = re.compile(r"<s>|</s>|<\|im_start\|>|<\|im_end\|>|<\|endoftext\|>|\bHuman:|\bAssistant:")


def _tiny_config(tmp_path: Path) -> Path:
    """The example as it is, at a tiny size (paths made absolute, the config leaves its folder)."""
    cfg = yaml.safe_load(EXAMPLE.read_text())
    cfg["induce"]["dialogues"] = [str((EXAMPLE.parent / p).resolve()) for p in cfg["induce"]["dialogues"]]
    cfg["induce"]["max_dialogues"] = 4
    seeds = cfg["simulate"]["seeds"]
    seeds["questions"] = [str((EXAMPLE.parent / p).resolve()) for p in seeds["questions"]]
    seeds["limit"] = 2
    # in the YAML, not --model: the flag would replace the model's sampling too (512 tokens a turn)
    cfg["model"] = {"model": "dialforge-tiny", "params": {**cfg["model"]["params"], "max_tokens": 12}}
    for spec in cfg["simulate"]["simulators"]:
        if spec.get("seeds"):
            spec["seeds"]["free"] = 2
        if spec.get("user"):
            spec["user"]["params"]["max_tokens"] = 12
    cfg["train_simulator"].update(max_steps=1, max_length=128, batch_size=2)
    cfg["realism"]["bootstrap"] = 20
    path = tmp_path / "tvp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.slow
def test_trained_vs_prompted_end_to_end_on_tiny_model(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    args = ["run", str(_tiny_config(tmp_path)), "--out", str(out)]
    r = subprocess.run(
        [sys.executable, "-m", "dialforge.cli", *args], capture_output=True, text=True, cwd=ROOT, env=env
    )
    assert r.returncode == 0, r.stderr[-3000:]
    state = json.loads((out / "pipeline.json").read_text())
    stages = state["stages"]
    assert list(stages) == [
        "start",
        "holdout",
        "induce",
        "train_simulator",
        *(f"simulate.{n}" for n in SIMS),
        *(f"select.{n}" for n in SIMS),
        *(f"realism.{n}" for n in SIMS),
        "report",
        "finished",
    ]
    # OASST trees (564 threads) + OASST's realistic seed threads (158): 20% of families held out
    assert stages["holdout"]["induce"] == 610 and stages["holdout"]["held_out"] == 112
    # the simulator learns from the dialogues realism does not hold out, and from nothing else
    ts = stages["train_simulator"]
    assert ts["data"] == [str(out / "realism" / "induce_dialogues.jsonl")] and ts["steps"] == 1
    assert ts["examples"] > 0 and ts["final"] == str(out / "train_simulator" / "final")
    assert (out / "train_simulator" / "final" / "dialforge_template.json").exists()
    for name in ("trained", "trained_free"):
        manifest = json.loads((out / "simulate" / name / "manifest.json").read_text())
        assert manifest["config"]["user"]["model"] == ts["final"]
        assert manifest["config"]["user_format"] == "trained"
    for name in ("socratic", "persona", "strategy"):
        manifest = json.loads((out / "simulate" / name / "manifest.json").read_text())
        assert manifest["config"]["user"]["model"] == "dialforge-tiny"
    # done-when: >= 2 simulated user turns in >= 80% of the trained simulator's conversations,
    # free and seeded; no template token in any text; a seed-only or errored one is no success
    for name, n, first_simulated in (("trained", 2, False), ("trained_free", 2, True)):
        convs = [json.loads(x) for x in (out / "simulate" / name / "conversations.jsonl").read_text().splitlines()]
        assert len(convs) == n
        simulated = []
        for c in convs:
            users = [m for m in c["messages"] if m["role"] == "user"]
            assert (not users[0].get("meta", {}).get("seed")) is first_simulated
            assert c["meta"]["termination_reason"] != "error"
            simulated.append(sum(1 for m in users if not m.get("meta", {}).get("seed")))
            for m in c["messages"]:
                assert not TEMPLATE_TOKENS.search(m["content"]), m["content"]
        assert simulated == ([3, 3] if first_simulated else [2, 2])
        assert stages[f"select.{name}"]["failed"] == 0
    for name in SIMS:
        assert stages[f"simulate.{name}"]["conversations"] == 2
        card = json.loads((out / stages[f"realism.{name}"]["card"]).read_text())
        assert card["real"]["conversations"] == 112
    html = (out / "report.html").read_text()
    assert "Closest to real users" in html and "within noise" in html


def _card(auc, ci, chance, mauve, null05, ks, null95, diff_ci, overall):
    """A realism card with made-up figures (the shape RealismCard reads)."""
    from dialforge.realism.card import RealismCard

    side = {"conversations": 50, "user_turns": 100, "groups": 40}
    return RealismCard.model_validate(
        {
            "sim": side,
            "real": side,
            "seed": 0,
            "discriminator": {"auc": auc, "ci95": ci, "chance95": chance, "n_per_side": 100, "folds": 5},
            "mauve": {"mauve": mauve, "null05": null05, "n_per_side": 100, "clusters": 10, "pca_dims": 8, "scaling": 5},
            "distances": {
                "question_rate": {
                    "kind": "share",
                    "ks": ks,
                    "null95": null95,
                    "diff_ci95": diff_ci,
                    "n_sim": 100,
                    "n_real": 100,
                }
            },
            "first_turns": {
                "n_per_side": 0,
                "sim_distinct2": None,
                "real_distinct2": None,
                "sim_vendi": None,
                "real_vendi": None,
            },
            "role_adherence": {
                "sim_phrase_share": 0.0,
                "real_phrase_share": 0.0,
                "sim_classifier_share": None,
                "real_classifier_share": None,
                "classifier_auc": None,
                "n_sim": 100,
                "n_real_user": 100,
                "n_real_assistant": 100,
            },
            "overall": {"score": overall, "components": {}, "definition": "test"},
        }
    )


def test_closest_to_real_names_the_winner_and_says_when_it_is_noise():
    from dialforge.report.closest import closest_to_real

    a = _card(0.60, (0.55, 0.65), (0.42, 0.58), 0.90, 0.80, 0.10, 0.15, (-0.2, 0.02), 0.7)
    b = _card(0.30, (0.25, 0.38), (0.42, 0.58), 0.85, 0.80, 0.40, 0.15, (-0.5, -0.3), 0.5)
    c = _card(0.95, (0.92, 0.99), (0.42, 0.58), 0.20, 0.80, 0.12, 0.15, (-0.25, 0.0), 0.6)
    floor = _card(0.52, (0.45, 0.6), (0.42, 0.58), 0.97, 0.80, 0.02, 0.15, (-0.05, 0.05), 0.9)
    rows = {r["figure"]: r for r in closest_to_real([("a", a), ("b", b), ("c", c)], floor)}
    assert list(rows) == [
        "discriminator AUC (0.5 is best)",
        "MAUVE (higher)",
        "question rate: KS (lower)",
        "overall realism (higher)",
    ]
    auc = rows["discriminator AUC (0.5 is best)"]
    # |0.6 - 0.5| = 0.1 beats |0.3 - 0.5| = 0.2; neither inside the chance band; the gap
    # intervals [0.05, 0.15] and [0.12, 0.25] overlap
    assert (auc["closest"], auc["value"], auc["interval"]) == ("a", 0.60, (0.55, 0.65))
    assert (auc["runner_up"], auc["runner_up_value"], auc["floor"]) == ("b", 0.30, 0.52)
    assert auc["within_chance"] == [] and auc["verdict"] == "within noise of b (95% intervals overlap)"
    # MAUVE: a and b are both above the null 5th percentile: as close as real is to real
    mauve = rows["MAUVE (higher)"]
    assert (mauve["closest"], mauve["runner_up"], mauve["within_chance"]) == ("a", "b", ["a", "b"])
    assert mauve["verdict"] == "within noise: 2 simulators are within chance of real users (a, b)"
    qr = rows["question rate: KS (lower)"]
    assert (qr["closest"], qr["runner_up"], qr["within_chance"]) == ("a", "c", ["a", "c"])
    assert qr["verdict"] == "within noise: 2 simulators are within chance of real users (a, c)"
    overall = rows["overall realism (higher)"]
    assert (overall["closest"], overall["verdict"]) == ("a", "no interval: a ranking only")
    # b alone against c: AUC gaps [0.12, 0.25] and [0.42, 0.49] do not overlap; MAUVE: only b
    rows = {r["figure"]: r for r in closest_to_real([("b", b), ("c", c)])}
    assert rows["discriminator AUC (0.5 is best)"]["verdict"] == "clear: 95% intervals do not overlap"
    assert rows["discriminator AUC (0.5 is best)"]["floor"] is None
    assert rows["MAUVE (higher)"]["verdict"] == "clear: only b is within chance of real users"
    assert rows["question rate: KS (lower)"]["verdict"] == "clear: only c is within chance of real users"
    # the same figures twice: a tie, not a winner
    rows = {r["figure"]: r for r in closest_to_real([("c", c), ("c2", c)])}
    assert rows["overall realism (higher)"]["verdict"] == "tied with c2"


def test_trained_simulators_need_the_train_stage_and_its_data():
    from pydantic import ValidationError

    from dialforge.pipeline import PipelineConfig, simulate_configs

    base = {
        "model": {"model": "dialforge-tiny"},
        "simulate": {
            "seeds": {"questions": ["q.jsonl"]},
            "simulators": [{"name": "t", "mode": "socratic", "trained": True}],
        },
    }
    with pytest.raises(ValidationError, match=r"simulators.0 \(t\): `trained: true` needs a `train_simulator:` stage"):
        PipelineConfig.model_validate(base)
    with pytest.raises(ValidationError, match="train_simulator: give `data:`"):
        PipelineConfig.model_validate({**base, "train_simulator": {}})
    cfg = PipelineConfig.model_validate({**base, "train_simulator": {"data": ["d.jsonl"], "max_steps": 3}})
    assert (cfg.train_simulator.kind, cfg.train_simulator.max_steps) == ("simulator", 3)
    sc = simulate_configs(cfg, cfg.model, None, "/runs/x/train_simulator/final")["t"]
    assert (sc.user.kind, sc.user.model, sc.user_format) == ("transformers", "/runs/x/train_simulator/final", "trained")
    # a served pipeline model: the trained folder still runs in-process, with the role's sampling
    served = PipelineConfig.model_validate(
        {
            **base,
            "model": {"model": "m", "base_url": "http://h/v1", "params": {"temperature": 0.3}},
            "train_simulator": {"data": ["d.jsonl"]},
        }
    )
    sc = simulate_configs(served, served.model, None, "/f")["t"]
    assert (sc.user.kind, sc.user.model, sc.user.params.temperature) == ("transformers", "/f", 0.3)
    # a simulator's own seeds (free mode) replace the stage's
    own = PipelineConfig.model_validate(
        {
            **base,
            "train_simulator": {"data": ["d.jsonl"]},
            "simulate": {
                **base["simulate"],
                "simulators": [{"name": "t", "mode": "socratic", "trained": True, "seeds": {"free": 5}}],
            },
        }
    )
    sc = simulate_configs(own, own.model, None, "/f")["t"]
    assert (sc.seeds.free, sc.seeds.questions) == (5, [])


def test_the_example_loads_and_validates_from_any_directory(tmp_path, monkeypatch):
    from dialforge.config import iter_inputs, load_config
    from dialforge.pipeline import PipelineConfig, validate_pipeline

    monkeypatch.chdir(tmp_path)
    cfg = load_config(PipelineConfig, EXAMPLE)
    assert {w for w, _ in iter_inputs(cfg)} == {
        "induce.dialogues[0]",
        "induce.dialogues[1]",
        "simulate.seeds.questions[0]",
    }
    validate_pipeline(cfg, str(EXAMPLE))  # every input there, every simulator's config builds
    assert cfg.train_simulator is not None and cfg.train_simulator.template == "dyadic"
    specs = {s.name: s for s in cfg.simulate.simulators}
    assert list(specs) == list(SIMS)
    assert [n for n, s in specs.items() if s.trained] == ["trained", "trained_free"]
    assert specs["trained_free"].seeds is not None and specs["trained_free"].seeds.free == 12
    assert cfg.realism is not None and cfg.realism.heldout == 0.2 and cfg.realism.real is None
