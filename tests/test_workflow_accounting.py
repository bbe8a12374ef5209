"""Workflow import keeps every real step: each node of a STAR flowchart, each ABCD action and
each SGD slot is a step, a documented drop with its reason, or an inferred edge, and no
agent step is unreachable. Run over every STAR task shipped (the repo's `data/star` and, where
present, the shared copy) and over the ABCD guidelines and the SGD schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dialforge.workflows import import_abcd, import_star, track
from dialforge.workflows.importers import RESULTS, VERDICTS, _abcd_options, _is_query
from dialforge.workflows.sgd import import_sgd, intent_workflow

ROOT = Path(__file__).resolve().parents[1]
STAR_DIRS = [d for d in (ROOT / "data/star/tasks", ROOT.parent / "shared/data/star/tasks") if d.is_dir()]
USER_SIDE = {"yes", "no", "done", *VERDICTS}


def _texts(tasks: Path, name: str) -> tuple[dict[str, str], dict[str, str]]:
    data = json.loads((tasks / f"{name}.json").read_text())
    rp = tasks / f"{name}_responses.json"
    return data["graph"], {**data.get("replies", {}), **(json.loads(rp.read_text()) if rp.exists() else {})}


@pytest.mark.parametrize("tasks", STAR_DIRS, ids=lambda p: str(p.relative_to(ROOT.parent)))
def test_every_star_node_is_a_step_a_documented_drop_or_an_inferred_edge(tasks):
    wfs, failed = import_star(tasks)
    assert failed == {} and len(wfs) == 18
    for wf in wfs:
        graph, texts = _texts(tasks, wf.name)
        nodes = {*graph, *graph.values()}
        dropped = wf.source["dropped"]
        assert nodes | set(texts) == set(wf.steps) | set(dropped), wf.name
        assert all(why.strip() for why in dropped.values())
        assert not any("unreachable" in why for why in dropped.values()), wf.name
        # every wizard step of the flowchart (a node with a reply template that is not a
        # user answer, an API call or its result) is a step the walk can reach
        wizard = {n for n in nodes if n in texts and n not in USER_SIDE and n not in RESULTS and not _is_query(n)}
        assert wizard <= set(wf.steps), (wf.name, wizard - set(wf.steps))
        assert wf._reachable() == set(wf.steps)
        # an edge the graph lacks is listed: each option's (step, target) is a graph edge,
        # runs through a user answer / result / verdict node, or is in inferred_edges
        inferred = " ".join(wf.source["inferred_edges"])
        for sid, step in wf.steps.items():
            for o in step.options:
                if o.next is None or graph.get(sid) == o.next:
                    continue
                via = o.label in graph and graph[o.label] == o.next
                assert via or (sid in inferred and o.next in inferred), (wf.name, sid, o)
    assert sum(len(w.source["inferred_edges"]) for w in wfs) == 4


def _done_task(tmp_path: Path) -> Path:
    """A synthetic task with STAR's trip_directions shape (not shipped here): a question that
    loops on `yes`, a detour on `no`, and `done` in the middle leading to two real steps."""
    graph = {
        "hello": "ask_place",
        "ask_place": "query",
        "query": "step_ask_proceed",
        "yes": "step_ask_proceed",
        "no": "detailed_step",
        "done": "arrived",
        "arrived": "anything_else",
    }
    replies = {
        "hello": "Hello, how can I help?",
        "ask_place": "Where do you need to go?",
        "step_ask_proceed": "{step:s} Can I proceed or do you require more detailed instructions?",
        "detailed_step": "{detail:s}",
        "arrived": "There are no more directions - you have reached your destination.",
        "anything_else": "Is there anything else that I can do for you?",
        "bye": "Thank you and goodbye.",
        "yes": "Yes",
        "no": "No",
        "done": "Done",
        "query": "Query",
    }
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "directions.json").write_text(json.dumps({"task": "directions", "graph": graph, "replies": replies}))
    return tasks


def test_a_done_node_outside_trivia_is_an_answer_and_the_steps_after_it_stay(tmp_path):
    wfs, failed = import_star(_done_task(tmp_path))
    assert failed == {}
    wf = wfs[0]
    assert [(o.answer, o.next, o.label) for o in wf.steps["step_ask_proceed"].options] == [
        ("Yes", "step_ask_proceed", "yes"),
        ("No", "detailed_step", "no"),
        ("Done", "arrived", "done"),
    ]
    assert {"arrived", "anything_else"} <= set(wf.steps) and wf.steps["anything_else"].is_ending
    assert wf.source["dropped"] == {
        "bye": "reply template the flowchart does not link (out_of_scope, bye, optional wording)",
        "done": "user answer: the reference answer 'Done' of step step_ask_proceed",
        "no": "user answer: the reference answer 'No' of step step_ask_proceed",
        "yes": "user answer: the reference answer 'Yes' of step step_ask_proceed",
    }
    # the detour goes back to the question, as the recorded dialogues do
    assert [o.next for o in wf.steps["detailed_step"].options] == ["step_ask_proceed"]
    assert wf.source["inferred_edges"] == ["detailed_step --any reply--> step_ask_proceed"]
    utts = [
        "Where do you need to go?",
        "Walk east. Can I proceed or do you require more detailed instructions?",
        "There are no more directions - you have reached your destination.",
        "Is there anything else that I can do for you?",
    ]
    r = track(wf, utts, order="graph")
    assert r["path"] == ["ask_place", "step_ask_proceed", "arrived", "anything_else"] and r["success"]


def test_trivia_keeps_done_as_the_no_of_continue_playing(data_dir):
    trivia = next(w for w in import_star(data_dir / "star/tasks")[0] if w.name == "trivia")
    assert trivia.source["dropped"]["done"].startswith("user answer: the reference answer 'No' of steps ")
    assert not any(o.label == "done" and o.answer == "Done" for s in trivia.steps.values() for o in s.options)


def test_every_abcd_action_is_a_step_and_end_conversation_is_an_ending_wherever_it_is(data_dir):
    guidelines = json.loads((data_dir / "abcd/guidelines.json").read_text())
    wfs, failed = import_abcd(data_dir / "abcd")
    assert failed == {}
    by_name = {w.name: w for w in wfs}
    subflows = [(f, s, spec) for f, b in guidelines.items() for s, spec in b["subflows"].items()]
    assert len(wfs) == len(subflows) == 55
    for flow, sub, spec in subflows:
        wf = next(w for w in wfs if w.source["flow"] == flow and w.source["subflow"] == sub)
        with_text = [a for a in spec["actions"] if a.get("text", "").strip()]
        assert len(wf.steps) == len(with_text) and len(wf.source["dropped"]) == len(spec["actions"]) - len(with_text)
        assert wf._reachable() == set(wf.steps)
    assert sum(len(w.steps) for w in wfs) == 255
    ending_points = {w.name: w.source["endings"] for w in wfs if w.source["endings"]}
    assert sum(map(len, ending_points.values())) == 11 and len(ending_points) == 10
    stain = by_name["product_defect_return_due_to_stain"]
    assert [(o.next, o.label) for o in stain.steps["a3_end_conversation"].options] == [
        ("a4_enter_details", None),
        (None, "end_conversation"),
    ]
    assert stain.nodes["a3_end_conversation#1"].ending
    # a point that says both "head to the next step" and [End Conversation] is both
    downgrade = by_name["order_issue_manage_downgrade"].steps["a3_membership_privileges"]
    assert [o.label for o in downgrade.options] == [None, None, "end_conversation", None, "end_conversation"]
    # a step whose only point ends still leads on (the other case), so no step is lost
    credit = by_name["manage_account_status_credit_missing"].steps["a3_n_a"]
    assert [(o.next, o.label) for o in credit.options] == [
        ("a4_promo_code", None),
        ("a4_promo_code", None),
        (None, "end_conversation"),
    ]
    # a step whose only point ends still leads on (the other case), so no later step is lost
    only_end = _abcd_options(["Apologize and [End Conversation]"], "a4")
    assert [(o.answer, o.next, o.label) for o in only_end] == [
        ("Apologize and [End Conversation]", None, "end_conversation"),
        (None, "a4", None),
    ]


def test_every_sgd_slot_is_a_step_or_a_documented_drop(data_dir):
    schema = json.loads((data_dir / "sgd/train/schema.json").read_text())
    wfs, failed, _ = import_sgd(data_dir / "sgd/train/schema.json")
    assert failed == {}
    by = {(w.source["service"], w.source["intent"]): w for w in wfs}
    for svc in schema:
        defined = {s["name"] for s in svc["slots"]}
        for it in svc["intents"]:
            wf = by[(svc["service_name"], it["name"])]
            named = [*it.get("required_slots", []), *it.get("optional_slots", {})]
            asked = [s for s in wf.steps if s.startswith(("ask_", "offer_"))]
            assert len(asked) + len(wf.source["dropped"]) == len(named)
            assert set(wf.source["dropped"]) == {s for s in named if s not in defined}
            assert f"call_{it['name']}" in wf.steps and wf._reachable() == set(wf.steps)
    assert sum(len(w.source["dropped"]) for w in wfs) == 0
    # a slot the intent names but the service lacks is listed, not silently skipped (synthetic)
    svc = {"service_name": "Synth_1", "slots": [{"name": "city", "description": "the city"}], "intents": []}
    wf = intent_workflow(svc, {"name": "Find", "required_slots": ["city", "ghost"], "optional_slots": {}})
    assert [s for s in wf.steps if s.startswith("ask_")] == ["ask_city"]
    assert wf.source["dropped"] == {"ghost": "slot the intent names but the service does not define: nothing to ask"}
