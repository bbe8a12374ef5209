"""Workflow graphs, importers on the real schemas, the subgoal tracker, the self-talk loop."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from dialforge.errors import ConfigError
from dialforge.llm import LLM
from dialforge.testing import ScriptedChatModel
from dialforge.workflows import (
    FilterSpec,
    SelfTalkConfig,
    apply_filter,
    import_abcd,
    import_star,
    load_workflow,
    selftalk_engine,
    selftalk_seed,
    track,
)

ROOT = Path(__file__).resolve().parents[1]

# A hand-written workflow in the style of the paper's shop-keeper example (not dialogue data).
SHOP = {
    "name": "buy_longsword",
    "topic": "buy a longsword",
    "agent": "shop keeper",
    "start": "greet",
    "steps": {
        "greet": {
            "say": "Good day, how can I help you?",
            "options": [
                {"answer": "I want to buy a longsword", "next": "budget"},
                {"answer": "I am just browsing", "end": "Let me know if you need anything."},
            ],
        },
        "budget": {
            "say": "What is your budget?",
            "options": [
                {"answer": "I have 10 gold coins", "next": "cheap"},
                {
                    "answer": "I have 100 gold coins",
                    "end": "Here is your steel longsword. Glad to be of service, goodbye!",
                },
            ],
        },
        "cheap": {"say": "For 10 gold coins I can offer a wooden practice sword. Glad to be of service!"},
    },
}


def _write(tmp_path, data, name="wf.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data))
    return p


@pytest.mark.parametrize(
    "mutate,msg",
    [
        (lambda d: d["steps"]["greet"]["options"][0].update(next="nowhere"), "next step 'nowhere' is not defined"),
        (lambda d: d["steps"].update(orphan={"say": "hi"}), "step 'orphan' is unreachable"),
        (lambda d: d["steps"]["greet"]["options"][0].update(end="x"), "exactly one of `next` or `end`"),
        (lambda d: d.update(start="missing"), "start step 'missing' is not defined"),
    ],
)
def test_graph_validation_errors(tmp_path, mutate, msg):
    data = json.loads(json.dumps(SHOP))
    mutate(data)
    with pytest.raises(ConfigError) as e:
        load_workflow(_write(tmp_path, data))
    assert msg in str(e.value) and "wf.yaml" in str(e.value)


def test_no_ending_is_an_error(tmp_path):
    data = {
        "name": "loop",
        "start": "a",
        "steps": {
            "a": {"say": "A?", "options": [{"answer": None, "next": "b"}]},
            "b": {"say": "B?", "options": [{"answer": None, "next": "a"}]},
        },
    }
    with pytest.raises(ConfigError, match="no ending"):
        load_workflow(_write(tmp_path, data))


@pytest.mark.slow
def test_star_importer_on_real_tasks(tmp_path, data_dir):
    wfs, failed = import_star(data_dir / "star/tasks")
    assert failed == {} and len(wfs) == 18
    bank = next(w for w in wfs if w.name == "bank_balance")
    assert bank.steps["hello"].say == "Hello, how can I help?"
    # the query is a tool step whose results branch: authenticated -> balance, else more checks
    assert [o.next for o in bank.steps["bank_ask_pin"].options] == ["query"]
    assert [(o.label, o.next) for o in bank.steps["query"].options] == [
        ("info_missing", "bank_ask_dob"),
        ("info_missing2", "bank_inform_cannot_authenticate"),
        ("query_failure", "bank_inform_cannot_authenticate"),
        ("query_success", "bank_inform_balance"),
    ]
    assert bank.steps["bank_inform_balance"].say == "Your current balance is in credit."  # slot removed
    apt = next(w for w in wfs if w.name == "apartment_search")
    assert [(o.answer, o.next) for o in apt.steps["apartment_ask_search_more"].options] == [
        ("Yes", "apartment_inform_search_criteria"),
        ("No", "goodbye_1"),
    ]
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "dialforge.cli",
            "workflows",
            "import",
            "star",
            str(data_dir / "star/tasks"),
            str(tmp_path / "wf"),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and "18 workflows imported, 0 not" in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "dialforge.cli", "workflows", "show", str(tmp_path / "wf/weather.yaml")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and "[hello] 'Hello, how can I help?'" in r.stdout


def test_abcd_importer_on_real_guidelines(data_dir):
    src = data_dir / "abcd"
    wfs, failed = import_abcd(src)
    guidelines = json.loads((src / "guidelines.json").read_text())
    assert len(wfs) + len(failed) == sum(len(f["subflows"]) for f in guidelines.values()) == 55
    assert failed == {}
    refund = next(w for w in wfs if w.name == "product_defect_initiate_refund")
    assert refund.steps[refund.start].say.startswith("All chats in this flow start by asking the customer")
    assert any(o.answer and o.answer.startswith("Gift card") for s in refund.steps.values() for o in s.options)


def test_tracker_depth_on_hand_checked_dialogues(tmp_path):
    wf = load_workflow(_write(tmp_path, SHOP))
    assert wf.max_depth == 3
    # full path to the 100-coin ending
    r = track(
        wf,
        [
            "Good day! How can I help you today?",
            "What is your budget, traveller?",
            "Here is your steel longsword, glad to be of service. Goodbye!",
        ],
        order="graph",
    )
    assert (r["depth"], r["success"], r["path"]) == (3, True, ["greet", "budget", "budget#1"])
    assert r["relative_depth"] == 1.0
    # stuck after the greeting: the second utterance matches no child
    r = track(wf, ["Good day, how can I help you?", "The weather is lovely in the valley today."], order="graph")
    assert (r["depth"], r["success"]) == (1, False) and r["relative_depth"] == pytest.approx(1 / 3, abs=1e-3)
    # graph order (the paper's): the budget question before the greeting does not count
    r = track(wf, ["What is your budget?", "Good day, how can I help you?"], order="graph")
    assert r["path"] == ["budget"] and r["depth"] == 1  # the start's children may open (user spoke first)
    assert track(wf, [], order="graph")["depth"] == 0
    # the default (any order, chosen on STAR: docs/star_tracker.md) counts both
    r = track(wf, ["What is your budget?", "Good day, how can I help you?"])
    assert r["path"] == ["budget", "greet"] and r["depth"] == 2 and not r["success"]
    with pytest.raises(ValueError, match="tracker order must be one of graph, any, lookahead"):
        track(wf, [], order="paper")


def test_lookahead_tracker_skips_and_backfills_but_not_far_ahead():
    """Order-tolerant with a bounded look-ahead (synthetic chain a -> b -> c -> d -> e)."""
    from dialforge.workflows import Workflow

    names = ["alpha", "bravo", "charlie", "delta", "echo"]
    texts = ["Hello there friend", "Which city please", "What date suits", "How many guests", "Booked goodbye now"]
    steps = {n: {"say": texts[i], "options": [{"next": names[i + 1]}] if i < 4 else []} for i, n in enumerate(names)}
    wf = Workflow.model_validate({"name": "chain", "start": "alpha", "steps": steps})
    say = {n: wf.steps[n].say for n in names}
    # skip bravo, then come back to it: both count with look-ahead 2
    r = track(wf, [say["alpha"], say["charlie"], say["bravo"]], order="lookahead", lookahead=2)
    assert r["path"] == ["alpha", "charlie", "bravo"]
    # echo is 4 steps after alpha: out of reach at look-ahead 2, in reach at 4, any order always
    assert track(wf, [say["alpha"], say["echo"]], order="lookahead", lookahead=2)["path"] == ["alpha"]
    assert track(wf, [say["alpha"], say["echo"]], order="lookahead", lookahead=4)["path"] == ["alpha", "echo"]
    r = track(wf, [say["alpha"], say["echo"]], order="any")
    assert r["path"] == ["alpha", "echo"] and r["success"]
    assert track(wf, [say["alpha"], say["echo"]], order="graph")["path"] == ["alpha"]


def _agent_says_instruction(req):
    """A scripted agent that says what its instruction (after the history) tells it to."""
    m = re.search(r"Now, you must say: (.*)$", req.messages[-1]["content"], re.S)
    return m.group(1) if m else "Sure, tell me more."


def _dialogue(cfg, wf, conv_id, client, agent, picker=None, end_check=None, judge=None):
    engine = selftalk_engine(cfg, LLM(client), LLM(agent), picker, end_check, judge)
    return asyncio.run(engine.run_one(conv_id, selftalk_seed(cfg, wf, conv_id), 0))


def _run(tmp_path, client_replies, **kw):
    wf = load_workflow(_write(tmp_path, SHOP))
    cfg = SelfTalkConfig(workflows=str(tmp_path), client={"model": "client"}, agent={"model": "agent"}, **kw)
    client = ScriptedChatModel(client_replies, "client")
    agent = ScriptedChatModel(_agent_says_instruction, "agent")
    return _dialogue(cfg, wf, "c0ffee00", client, agent), client


def test_loop_reaches_an_ending(tmp_path):
    conv, _ = _run(tmp_path, ["Hello, I want to buy a longsword.", "I have 100 gold coins."])
    assert conv.meta["termination_reason"] in ("ended", "goodbye")
    assert conv.meta["workflow_eval"]["success"] and conv.meta["workflow_eval"]["depth"] == 3
    assert conv.meta["workflow_eval"]["order"] == "any"  # the filters say which tracker scored them
    agent = [m for m in conv.messages if m.role == "assistant"]
    assert agent[-1].content.startswith("Here is your steel longsword")
    assert [m.meta["step"] for m in agent] == ["greet", "budget", "budget#1"]


def test_loop_gets_stuck_and_runs_out_of_turns(tmp_path):
    conv, _ = _run(tmp_path, lambda r: "Tell me about the dragons in the northern mountains.", max_turns=4)
    assert conv.meta["termination_reason"] == "max_turns"
    assert conv.meta["workflow_eval"]["depth"] == 1 and not conv.meta["workflow_eval"]["success"]
    agent = [m for m in conv.messages if m.role == "assistant"]
    assert len(agent) == 4 and all("natural reply" in m.meta["instruction"] for m in agent[1:])


def test_loop_ends_by_goodbye(tmp_path):
    conv, _ = _run(tmp_path, ["Nothing for me today, goodbye!"])
    assert conv.meta["termination_reason"] == "goodbye"
    assert conv.messages[-1].role == "user" and "goodbye" in conv.messages[-1].content


def test_filters_kept_counts():
    from dialforge.conversation import Conversation

    convs = [
        Conversation(
            id=f"c{i}",
            messages=[],
            meta={"workflow_eval": {"depth": i % 7, "relative_depth": (i % 7) / 6, "success": i % 7 == 6}},
        )
        for i in range(100)
    ]
    assert len(apply_filter(convs, FilterSpec(kind="abs_subgoals", k=5))) == sum(1 for i in range(100) if i % 7 >= 5)
    top = apply_filter(convs, FilterSpec(kind="top_percent", p=0.05))
    assert len(top) == 5 and all(c.meta["workflow_eval"]["depth"] == 6 for c in top)
    assert len(apply_filter(convs, FilterSpec(kind="ended"))) == 14
    r1 = apply_filter(convs, FilterSpec(kind="random", p=0.1, seed=1))
    assert len(r1) == 10 and r1 == apply_filter(convs, FilterSpec(kind="random", p=0.1, seed=1))
    assert len(apply_filter(convs, FilterSpec(kind="none"))) == 100


@pytest.mark.slow
def test_selftalk_two_loops_trains_the_agent(tmp_path, tiny_model_dir):
    """Generate with a tiny in-process agent and an HTTP client, keep all, train, loop again."""
    from dialforge.testing import FakeOpenAIServer

    wfdir = tmp_path / "wf"
    wfdir.mkdir()
    _write(wfdir, SHOP)
    with FakeOpenAIServer(reply=lambda b: "I want to buy a longsword.") as srv:
        cfg = {
            "workflows": str(wfdir),
            "client": {"model": "client", "base_url": srv.base_url},
            "agent": {"model": str(tiny_model_dir), "params": {"max_tokens": 12}},
            "dialogues_per_workflow": 4,
            "max_turns": 2,
            "loops": 2,
            "filter": {"kind": "random", "p": 1.0},
            "train_max_steps": 2,
            "lora_r": 4,
        }
        path = tmp_path / "st.yaml"
        path.write_text(yaml.safe_dump(cfg))
        r = subprocess.run(
            [sys.executable, "-m", "dialforge.cli", "selftalk", "--config", str(path), "--out", str(tmp_path / "run")],
            capture_output=True,
            text=True,
        )
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads(r.stdout)
    assert [lp["dialogues"] for lp in summary["loops"]] == [4, 4]
    assert summary["loops"][0]["train"]["steps"] == 2
    assert summary["loops"][1]["agent"].endswith("loop-0/agent/final")
    rows = [json.loads(x) for x in (tmp_path / "run/loop-1/dialogues.jsonl").read_text().splitlines()]
    assert all(r["meta"]["agent_model"].endswith("loop-0/agent/final") for r in rows)


@pytest.mark.slow
def test_the_selftalk_example_runs_on_imported_star_workflows(tmp_path):
    """examples/selftalk.yaml as its comment says: import STAR's real task flows, then run it
    on a server. The server's random text follows no step: the run says so."""
    import uuid

    from dialforge.testing import FakeOpenAIServer

    def cli(*args):
        cmd = [sys.executable, "-m", "dialforge.cli", *args]
        return subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)

    r = cli("workflows", "import", "star", str(ROOT / "data/star/tasks"), "workflows/star")
    assert r.returncode == 0, r.stderr
    with FakeOpenAIServer(reply=lambda b: f"synthetic {uuid.uuid4().hex} text?") as srv:
        r = cli(
            "selftalk", "--config", str(ROOT / "examples/selftalk.yaml"), "--out", "run",
            "--base-url", srv.base_url, "--model", "fake", "--set", "dialogues_per_workflow=1", "--strict",
        )  # fmt: skip
    assert r.returncode == 3, r.stderr[-2000:]
    loop = json.loads(r.stdout)["loops"][0]
    assert (loop["dialogues"], loop["depth_mean"], loop["success_rate"]) == (18, 0.0, 0.0)
    assert loop["tracker_order"] == "any"  # the summary says which tracker the filter ranked by
    assert "warning: selftalk loop 0: 0/18 dialogues completed any workflow step" in r.stderr


def test_star_intents_and_agent_diversity(data_dir):
    from dialforge.conversation import Conversation, Message
    from dialforge.workflows.selftalk import agent_diversity, star_intents

    intents = star_intents(data_dir / "star/star_dialogues_subset.jsonl")
    assert len(intents) == 18 and all(len(v) == 15 for v in intents.values())
    assert intents["spaceship_access_codes"][0].startswith("Your spaceship is under attack!")
    same = [
        Conversation(
            id=f"s{i}",
            messages=[Message(role="assistant", content="Hello, how can I help?")],
            meta={"workflow_agent": "clerk"},
        )
        for i in range(3)
    ]
    other = [
        Conversation(id=f"o{i}", messages=[Message(role="assistant", content=t)], meta={"workflow_agent": "genie"})
        for i, t in enumerate(["Your wish is granted", "What do you desire, master?"])
    ]
    d = agent_diversity(same + other)
    assert d["clerk"] == 0.0 and d["genie"] == 1.0


def test_loop_llm_end_check_and_character_consistency(tmp_path):
    wf = load_workflow(_write(tmp_path, SHOP))
    cfg = SelfTalkConfig(workflows=str(tmp_path), client={"model": "client"}, agent={"model": "agent"}, max_turns=5)
    parts = iter(["middle", "end"])
    end_llm = LLM(ScriptedChatModel(lambda r: json.dumps({"part": next(parts)}), "ender"))
    verdicts = iter([True, False])
    judge = LLM(ScriptedChatModel(lambda r: json.dumps({"in_character": next(verdicts)}), "judge"))
    client = ScriptedChatModel(["I want to buy a longsword.", "Hmm, let me think about my budget."], "client")
    agent = ScriptedChatModel(_agent_says_instruction, "agent")
    conv = _dialogue(cfg, wf, "c0ffee01", client, agent, None, end_llm, judge)
    assert conv.meta["termination_reason"] == "end_check"
    assert [m.role for m in conv.messages] == ["assistant", "user", "assistant", "user"]
    assert conv.meta["workflow_eval"]["character_consistency"] == 0.5


def test_depth_is_linear_time_and_deep_chains_work():
    """Longest path over steps with cycles handled: a fully connected 200-step graph (every
    step leads to every other) takes well under a second; a 3,000-step chain neither recurses
    (RecursionError before) nor misses a step."""
    import time

    from dialforge.workflows import Workflow, draw

    n = 200
    steps = {
        f"s{i}": {"say": f"step {i}?", "options": [{"answer": f"go {j}", "next": f"s{j}"} for j in range(n) if j != i]}
        for i in range(n)
    }
    steps["s0"]["options"].append({"answer": "stop", "end": "bye"})
    wf = Workflow.model_validate({"name": "dense", "start": "s0", "steps": steps})
    t0 = time.perf_counter()
    assert wf.max_depth == n  # every step once, then the path closes a cycle
    assert time.perf_counter() - t0 < 1.0
    n = 3000
    chain = {f"c{i}": {"say": f"c {i}", "options": [{"answer": None, "next": f"c{i + 1}"}]} for i in range(n - 1)}
    chain[f"c{n - 1}"] = {"say": "done", "options": []}
    wf = Workflow.model_validate({"name": "chain", "start": "c0", "steps": chain})
    assert wf.max_depth == n
    assert draw(wf).count("\n") == 1 + 2 * (n - 1) + 1 - 1


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind,content,msg",
    [
        ("star", {"task": "t", "graph": ["hello", "bye"], "replies": {}}, "field graph: expected an object"),
        ("star", [{"dialogue_id": "1", "turns": []}], "expected a STAR task"),
        ("star", "{not json", "found invalid JSON"),
        ("abcd", [{"convo_id": 1}], "expected ABCD guidelines"),
        ("abcd", "{not json", "found invalid JSON"),
        ("abcd", {"convo_id": 1, "original": [["agent", "hi"]]}, "a conversation file?"),
    ],
)
def test_importer_bad_inputs_are_one_line(tmp_path, kind, content, msg):
    src = tmp_path / "in"
    src.mkdir()
    name = "task.json" if kind == "star" else "guidelines.json"
    (src / name).write_text(content if isinstance(content, str) else json.dumps(content))
    r = subprocess.run(
        [sys.executable, "-m", "dialforge.cli", "workflows", "import", kind, str(src), str(tmp_path / "out")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2, r.stderr
    assert msg in r.stderr and "Traceback" not in r.stderr and str(src) in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_star_importer_accounts_for_every_node(data_dir):
    """Each node of every vendored task's graph and every reply template is a step or is
    listed in `source.dropped` with a reason: nothing disappears silently."""
    wfs, failed = import_star(data_dir / "star/tasks")
    assert failed == {} and len(wfs) == 18
    reasons: dict[str, int] = {}
    for wf in wfs:
        data = json.loads((data_dir / f"star/tasks/{wf.name}.json").read_text())
        responses = data_dir / f"star/tasks/{wf.name}_responses.json"
        texts = {**data.get("replies", {}), **(json.loads(responses.read_text()) if responses.exists() else {})}
        nodes = {*data["graph"], *data["graph"].values(), *texts}
        dropped = wf.source["dropped"]
        assert nodes == set(wf.steps) | set(dropped), wf.name
        assert not set(wf.steps) & set(dropped)
        assert all(why and why != "not an agent step" for why in dropped.values()), (wf.name, dropped)
        # every node of the graph that has something to say is a step: none is lost
        said = {n for n in {*data["graph"], *data["graph"].values()} if n in texts} - set(dropped)
        assert said <= set(wf.steps), wf.name
        for why in dropped.values():
            reasons[why.split(":")[0]] = reasons.get(why.split(":")[0], 0) + 1
    # the README quotes these counts
    assert sum(len(w.steps) for w in wfs) == 172
    assert reasons == {
        "reply template the flowchart does not link (out_of_scope, bye, optional wording)": 79,
        "query result": 30,
        "user answer": 23,
        "the wizard's verdict on the user's answer": 3,
    }


def _star(data_dir):
    wfs, failed = import_star(data_dir / "star/tasks")
    assert failed == {}
    return {w.name: w for w in wfs}


# task -> the question its yes/no answers, and where each leads (the STAR graph's yes/no edges)
STAR_YES_NO = {
    "apartment_search": ("apartment_ask_search_more", "apartment_inform_search_criteria", "goodbye_1"),
    "doctor_schedule": ("doctor_inform_booking_available", "query_book", "doctor_ask_doctor_name"),
    "hotel_book": ("hotel_ask_confirm_booking", "query_book", "hotel_ask_hotel"),
    "hotel_search": ("hotel_ask_search_more", "hotel_inform_search_criteria", "goodbye_1"),
    "meeting_schedule": ("meeting_inform_unavailable_ask_different_time", "query", "goodbye_1"),
    "plane_book": ("plane_flight_available", "query_book", "plane_ask_flight_id"),
    "plane_search": ("plane_ask_more_questions", "plane_request_optional", "goodbye_1"),
    "restaurant_book": ("restaurant_ask_confirm_booking", "query_book", "restaurant_ask_restaurant"),
    "restaurant_search": ("restaurant_ask_continue_searching", "restaurant_inform_search_criteria", "goodbye_1"),
    "ride_book": ("ride_ask_confirm_booking", "query_book", "ride_inform_search_criteria"),
    "spaceship_access_codes": ("anything_else", None, "spaceship_bye"),
    "spaceship_life_support": ("anything_else", None, "spaceship_bye"),
}


def test_star_yes_no_answer_the_question_they_follow(data_dir):
    """Each yes/no pair becomes the reference answers of the one question it answers (a
    booking "yes" answers the question after the availability check), and nowhere else."""
    wfs = _star(data_dir)
    for name, (question, yes, no) in STAR_YES_NO.items():
        wf = wfs[name]
        answered = {
            sid: [(o.answer, o.next) for o in st.options if o.label in ("yes", "no")] for sid, st in wf.steps.items()
        }
        expected = [("Yes", yes)] if yes else []
        assert sorted(answered[question]) == sorted([*expected, ("No", no)]), name
        assert all(not v for sid, v in answered.items() if sid != question), name
    assert not any(
        o.label in ("yes", "no") for n in set(wfs) - set(STAR_YES_NO) for s in wfs[n].steps.values() for o in s.options
    )


def test_star_api_calls_are_tool_steps_branching_on_their_results(data_dir):
    wfs = _star(data_dir)
    for name, wf in wfs.items():
        graph = json.loads((data_dir / f"star/tasks/{name}.json").read_text())["graph"]
        queries = {n for n in {*graph, *graph.values()} if n == "query" or n in ("query_check", "query_book")}
        assert queries and set(wf.source["tool_steps"]) == queries and queries <= set(wf.steps), name
        assert all(wf.source["tool_steps"][q] == name for q in queries)
        for q in queries:
            labels = [o.label for o in wf.steps[q].options]
            if q in graph:  # a direct successor: no branch
                assert [o.next for o in wf.steps[q].options] == [graph[q]] and labels == [None], (name, q)
            else:
                assert labels and all(graph[lab] == o.next for lab, o in zip(labels, wf.steps[q].options, strict=True))
    ride = wfs["ride_book"]  # the check's success/failure branch (once lost with the booking)
    assert [(o.label, o.next) for o in ride.steps["query_check"].options] == [
        ("query_success", "ride_ask_confirm_booking"),
        ("query_failure", "ride_inform_nothing_found"),
    ]
    assert [o.next for o in ride.steps["query_book"].options] == ["ride_confirm_booking"]
    hotel = wfs["hotel_book"]  # booking results belong to the booking query, not to the check
    assert [o.label for o in hotel.steps["query_check"].options] == ["available", "unavailable"]
    assert [o.label for o in hotel.steps["query_book"].options] == ["query_success", "query_failure"]


def test_star_every_step_is_reachable_and_the_inferred_edges_are_listed(data_dir):
    """The nodes once unreachable (ride_book's booking, ride_status's update, trivia's
    verdicts) are reached; edges the graph lacks are listed, never silent."""
    wfs = _star(data_dir)
    assert not any("unreachable" in why for w in wfs.values() for why in w.source["dropped"].values())
    assert {"ride_confirm_booking", "ride_ask_confirm_booking", "ride_inform_nothing_found"} <= set(
        wfs["ride_book"].steps
    )
    status = wfs["ride_status"]
    assert [o.next for o in status.steps["ride_provide_booking_status"].options] == [
        "ride_provide_booking_status_update"
    ]
    assert status.source["inferred_edges"] == [
        "ride_provide_booking_status --any reply--> ride_provide_booking_status_update"
    ]
    trivia = wfs["trivia"]
    assert trivia.steps["trivia_ask_question"].say == "[the question]"  # a slot-only template: a placeholder
    assert [(o.label, o.next) for o in trivia.steps["trivia_ask_question"].options] == [
        ("correct", "trivia_inform_answer_correct_ask_next"),
        ("incorrect", "trivia_inform_answer_incorrect_ask_next"),
        ("noanswer", "trivia_inform_answer_2_ask_next"),
    ]
    for ask_next in ("trivia_inform_answer_correct_ask_next", "trivia_inform_answer_incorrect_ask_next"):
        assert [(o.answer, o.next) for o in trivia.steps[ask_next].options] == [
            ("Yes", "query"),
            ("No", "anything_else"),
        ]
    assert len(trivia.source["inferred_edges"]) == 3
    assert sum(bool(w.source["inferred_edges"]) for w in wfs.values()) == 2
    assert trivia.max_depth == 6 and wfs["ride_book"].max_depth == 10  # hello ... anything_else


def test_the_tracker_walks_through_tool_steps_and_placeholders_a_human_never_says():
    """A human agent calls an API silently and says a fetched text in its own words: the
    graph-order walk may pass a tool step and a slot-only placeholder (synthetic workflow)."""
    from dialforge.workflows import Workflow

    steps = {
        "ask": {"say": "Which flight number do you want to check?", "options": [{"next": "call"}]},
        "call": {"say": "One moment, let me look that up.", "options": [{"next": "fetched"}]},
        "fetched": {"say": "[the message]", "options": [{"next": "bye"}]},
        "bye": {"say": "Is there anything else that I can do for you?"},
    }
    utts = ["Which flight number do you want to check?", "Is there anything else that I can do for you?"]
    plain = Workflow.model_validate({"name": "w", "start": "ask", "steps": steps})
    assert track(plain, utts, order="graph")["path"] == ["ask"]  # without the marks the walk stops at the call
    marked = Workflow.model_validate(
        {
            "name": "w",
            "start": "ask",
            "steps": steps,
            "source": {"tool_steps": {"call": "flights"}, "slot_only_nodes": ["fetched"]},
        }
    )
    r = track(marked, utts, order="graph")
    assert r["path"] == ["ask", "bye"] and r["success"]
    assert marked.next_said("ask") == ["call", "fetched", "bye"]


def test_the_default_tracker_is_the_best_on_star_complete_vs_cut(data_dir):
    """docs/star_tracker.md's measure on the shipped STAR subset: relative depth of each
    complete single-task dialogue vs the same dialogue cut after half its wizard turns."""
    from dialforge.io._records import iter_records
    from dialforge.workflows.star_eval import wizard_utterances
    from dialforge.workflows.tracker import DEFAULT_ORDER

    wfs = _star(data_dir)
    dialogues = []
    for d, _, _ in iter_records(data_dir / "star/star_dialogues_subset.jsonl"):
        caps = [c["Task"] for c in d["Scenario"]["WizardCapabilities"]]
        if len(caps) == 1 and caps[0] in wfs:
            dialogues.append((wfs[caps[0]], wizard_utterances(d)))
    assert len(dialogues) == 270

    def auc(order: str, lookahead: int = 2) -> float:
        full = np.array([track(w, u, order=order, lookahead=lookahead)["relative_depth"] for w, u in dialogues])
        cut = np.array(
            [track(w, u[: len(u) // 2], order=order, lookahead=lookahead)["relative_depth"] for w, u in dialogues]
        )
        return float(((full[:, None] > cut[None, :]) + 0.5 * (full[:, None] == cut[None, :])).mean())

    aucs = {"graph": auc("graph"), "lookahead": auc("lookahead"), "any": auc("any")}
    assert {k: round(v, 3) for k, v in aucs.items()} == {"graph": 0.545, "lookahead": 0.639, "any": 0.789}
    assert max(aucs, key=aucs.__getitem__) == DEFAULT_ORDER and aucs[DEFAULT_ORDER] >= 0.75


def test_a_turn_is_cut_where_it_starts_speaking_as_the_other_role():
    """The paper's stop on the other role's name (App. A.2): models tend to write the whole
    dialogue; a turn opening with a label is left to the role-flip rule."""
    from dialforge.workflows.agent import cut_at_role_name

    agent = ("shop keeper", "agent", "assistant")
    assert cut_at_role_name("I want a longsword. Shop keeper: Here it is!", agent) == ("I want a longsword.", True)
    assert cut_at_role_name("Yes please.\nAGENT : Right away.", agent) == ("Yes please.", True)
    assert cut_at_role_name("Agent: hello", agent) == ("Agent: hello", False)
    assert cut_at_role_name("My agent's fee is low.", agent) == ("My agent's fee is low.", False)
    assert cut_at_role_name("No label here: none at all.", agent) == ("No label here: none at all.", False)


def test_selftalk_turns_stop_on_the_other_roles_name(tmp_path):
    conv, client = _run(
        tmp_path,
        ["I want to buy a longsword. Shop keeper: Of course! Client: Great.", "I have 100 gold coins."],
    )
    users = [m for m in conv.messages if m.role == "user"]
    assert users[0].content == "I want to buy a longsword." and users[0].meta["cut_at_role_name"] is True
    assert "cut_at_role_name" not in users[1].meta
    assert conv.meta["workflow_eval"]["success"]  # the cut turn still answers the step
    # both sides ask their backend to stop on the other's label
    assert {"Shop keeper:", "Agent:", "assistant:"} <= set(client.requests[0].params.stop)


def test_the_selftalk_example_decodes_as_published():
    """App. A.2: top-p 0.95, top-k 50, T 0.8, 100 new tokens, 8 turns, both roles."""
    from dialforge.config import load_config

    cfg = load_config(SelfTalkConfig, ROOT / "examples/selftalk.yaml")
    for role in (cfg.client, cfg.agent):
        p = role.params
        assert (p.top_p, p.top_k, p.temperature, p.max_tokens) == (0.95, 50, 0.8, 100)
    assert cfg.max_turns == 8 and cfg.tracker_order == "any"
