"""SGD / MultiWOZ 2.2 schemas -> workflows; client intents into self-talk."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from dialforge.errors import DialforgeError
from dialforge.workflows import Workflow, load_workflows
from dialforge.workflows.sgd import import_sgd, intent_workflow


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "dialforge.cli", *args], capture_output=True, text=True)


@pytest.mark.slow
def test_sgd_train_schema_gives_53_valid_workflows(data_dir, tmp_path):
    schema = json.loads((data_dir / "sgd/train/schema.json").read_text())
    out = tmp_path / "wf"
    r = _cli(
        "workflows",
        "import",
        "sgd",
        str(data_dir / "sgd/train/schema.json"),
        str(out),
        "--dialogues",
        str(data_dir / "sgd/train/dialogues_001_first10.json"),
    )
    assert r.returncode == 0, r.stderr
    assert "53 workflows imported, 0 not" in r.stderr
    wfs = load_workflows(out)  # validated again from the YAML by the workflow model
    assert len(wfs) == 53 == sum(len(s["intents"]) for s in schema)
    by_name = {w.name: w for w in wfs}
    for svc in schema:
        for it in svc["intents"]:
            wf = by_name[f"{svc['service_name']}_{it['name']}"]
            asks = [s.removeprefix("ask_") for s in wf.steps if s.startswith("ask_")]
            assert asks == [s.lower() for s in it["required_slots"]]  # schema order
            assert [s for s in wf.steps if s.startswith("offer_")] == [f"offer_{s}" for s in it["optional_slots"]]
            assert wf.source["tool_steps"] == {f"call_{it['name']}": it["name"]}
            assert {o.label for o in wf.steps[f"call_{it['name']}"].options} == {"success", "failure"}
            assert wf.steps["goodbye"].is_ending
    intents = json.loads((out / "intents.json").read_text())
    assert set(intents) == set(by_name) and all(1 <= len(v) <= 5 for v in intents.values())


def test_transfer_money_workflow_exact(data_dir):
    schema = json.loads((data_dir / "sgd/train/schema.json").read_text())
    banks = next(s for s in schema if s["service_name"] == "Banks_1")
    wf = intent_workflow(banks, banks["intents"][1])
    assert wf.name == "Banks_1_TransferMoney"
    assert list(wf.steps) == [
        "greet",
        "ask_account_type",
        "ask_amount",
        "ask_recipient_account_name",
        "offer_recipient_account_type",
        "confirm",
        "call_TransferMoney",
        "inform_result",
        "inform_failure",
        "anything_else",
        "goodbye",
    ]
    ask = wf.steps["ask_account_type"]
    assert ask.say == "Could you tell me the account type of the user? The options are checking or savings."
    assert [o.answer for o in ask.options] == ["checking", "savings"]
    assert wf.steps["offer_recipient_account_type"].say.endswith("Otherwise I will use checking.")
    assert wf.steps["confirm"].options[1].next == "ask_account_type"  # "no" goes back to the first question
    assert wf.max_depth == 10


def test_intents_from_schema_values_and_dialogues(data_dir):
    plain = import_sgd(data_dir / "sgd/train/schema.json")[2]
    seen = import_sgd(
        data_dir / "sgd/train/schema.json", dialogues=[data_dir / "sgd/train/dialogues_001_first10.json"]
    )[2]
    # categorical values come from the schema; free-form ones only from dialogues
    assert all("account type of the user: " in i for i in plain["Banks_1_CheckBalance"])
    assert {i.split(": ")[-1].rstrip(")") for i in plain["Banks_1_CheckBalance"]} == {"checking", "savings"}
    assert plain["Restaurants_1_FindRestaurants"] != seen["Restaurants_1_FindRestaurants"]
    dialogues = json.loads((data_dir / "sgd/train/dialogues_001_first10.json").read_text())
    cities = {
        v
        for d in dialogues
        for t in d["turns"]
        for f in t["frames"]
        for v in f.get("state", {}).get("slot_values", {}).get("city", [])[:1]
    }
    assert all(any(f"located: {c}" in i for c in cities) for i in seen["Restaurants_1_FindRestaurants"])
    assert import_sgd(data_dir / "sgd/train/schema.json")[2] == plain  # seeded: the same every time


def test_multiwoz22_schema_shape(tmp_path):
    """MultiWOZ 2.2's schema has the SGD shape with dashed slot names and no result slots
    (synthetic service in that shape)."""
    schema = [
        {
            "service_name": "synthhotel",
            "description": "synthetic hotel service",
            "slots": [
                {
                    "name": "synthhotel-area",
                    "description": "area of the hotel",
                    "is_categorical": True,
                    "possible_values": ["north", "south"],
                },
                {
                    "name": "synthhotel-name",
                    "description": "name of the hotel",
                    "is_categorical": False,
                    "possible_values": [],
                },
            ],
            "intents": [
                {
                    "name": "find_synthhotel",
                    "description": "search for a hotel",
                    "is_transactional": False,
                    "required_slots": [],
                    "optional_slots": {"synthhotel-area": "dontcare", "synthhotel-name": "dontcare"},
                },
                {
                    "name": "book_synthhotel",
                    "description": "book a hotel",
                    "is_transactional": True,
                    "required_slots": ["synthhotel-name"],
                    "optional_slots": {},
                },
            ],
        }
    ]
    p = tmp_path / "schema.json"
    p.write_text(json.dumps(schema))
    wfs, failed, intents = import_sgd(tmp_path)  # a folder holding schema.json
    assert not failed and [w.name for w in wfs] == ["synthhotel_find_synthhotel", "synthhotel_book_synthhotel"]
    find = wfs[0]
    assert list(find.steps)[:3] == ["greet", "offer_synthhotel_area", "offer_synthhotel_name"]
    assert find.steps["offer_synthhotel_area"].say.endswith("Otherwise I will use any.")
    assert find.steps["confirm"].options[1].next == "offer_synthhotel_area"
    assert wfs[1].steps["inform_result"].say == "Done: your request to book a hotel went through."
    assert all(Workflow.model_validate(yaml.safe_load(w.to_yaml())) for w in wfs)
    assert intents["synthhotel_book_synthhotel"] == ["book a hotel"]  # free-form slot, no dialogues


@pytest.mark.slow
@pytest.mark.parametrize(
    "content,found",
    [
        ('{"dialogue_id": "x", "turns": []}', "found an object with keys: dialogue_id, turns"),
        ('[{"dialogue_id": "1_0", "services": ["X"], "turns": []}]', "found keys: dialogue_id, services, turns"),
        ('[{"service_name": "X", "slots": [1], "intents": []}]', "field 'slots': expected a list of objects"),
    ],
)
def test_wrong_file_to_sgd_importer_is_one_line(tmp_path, content, found):
    p = tmp_path / "schema.json"
    p.write_text(content)
    with pytest.raises(DialforgeError, match="expected an SGD / MultiWOZ 2.2 schema|expected a list"):
        import_sgd(p)
    r = _cli("workflows", "import", "sgd", str(p), str(tmp_path / "out"))
    assert r.returncode == 2 and found in r.stderr and r.stderr.strip().count("\n") == 0
    assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_selftalk_takes_intents_file(data_dir, tmp_path):
    """Two SGD workflows, client intents from `workflows import`'s intents.json via --intents."""
    from dialforge.testing import FakeOpenAIServer

    wfdir = tmp_path / "wf"
    assert _cli("workflows", "import", "sgd", str(data_dir / "sgd/train/schema.json"), str(wfdir)).returncode == 0
    keep = {"Banks_1_CheckBalance", "Banks_1_TransferMoney"}
    for p in wfdir.glob("*.yaml"):
        if p.stem not in keep:
            p.unlink()
    intents = json.loads((wfdir / "intents.json").read_text())
    with FakeOpenAIServer(reply=lambda b: "I would like some help, goodbye.") as srv:
        cfg = {
            "workflows": str(wfdir),
            "client": {"model": "client", "base_url": srv.base_url},
            "agent": {"model": "agent", "base_url": srv.base_url},
            "dialogues_per_workflow": 3,
            "max_turns": 1,
            "filter": {"kind": "none"},
        }
        path = tmp_path / "st.yaml"
        path.write_text(yaml.safe_dump(cfg))
        args = ["selftalk", "--config", str(path), "--out", str(tmp_path / "run"), "--intents"]
        r = _cli(*args, str(wfdir / "intents.json"))
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [json.loads(x) for x in (tmp_path / "run/loop-0/dialogues.jsonl").read_text().splitlines()]
    assert len(rows) == 6
    for row in rows:
        assert row["meta"]["intent"] in intents[row["meta"]["workflow"]]
