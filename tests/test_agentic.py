"""Agentic self-talk: tools over STAR's schemas executed on a per-conversation database,
a customer with a hidden goal, success checked on the final state (dialforge.agentic)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from dialforge.agentic.config import AgentToolsConfig, bundled_star
from dialforge.agentic.database import Database, load_star_database, star_expr
from dialforge.agentic.fake import agentic_reply
from dialforge.agentic.goals import TASKS, make_goals
from dialforge.agentic.policy import parse_text_calls
from dialforge.agentic.run import agentic, build_world, from_record
from dialforge.agentic.success import pass_hat_k, replay, simulator_errors, state_matches, verdict
from dialforge.agentic.tools import Tool, ToolBox, load_star_api, star_tool
from dialforge.io.check import check
from dialforge.testing import FakeOpenAIServer

STAR = bundled_star()


def _db() -> Database:
    return load_star_database(STAR, ["restaurant", "hotel", "plane"], rows=20, seed=0)


def _restaurant_box() -> ToolBox:
    return ToolBox(
        [star_tool(load_star_api(STAR, "restaurant_search")), star_tool(load_star_api(STAR, "restaurant_book"))]
    )


# -- database and tools ----------------------------------------------------------------------


def test_star_expressions_are_evaluated_without_eval() -> None:
    assert star_expr('!lambda p: p["NumRooms"] * 10', {"NumRooms": 3}) == 30
    assert star_expr('!lambda p: p["StartTimeHour"] + 2', {"StartTimeHour": 7}) == 9
    assert star_expr('!lambda p: "Conference" in p["Name"] or "Venue" in p["Name"]', {"Name": "West Bay Venue"}) is True
    assert star_expr('!list(combinations(["a", "b", "c"], 2))', {}) == [["a", "b"], ["a", "c"], ["b", "c"]]
    with pytest.raises(ValueError, match="unsupported expression"):
        star_expr("!__import__('os').getcwd()", {})


def test_database_is_drawn_the_same_every_time_one_row_per_name() -> None:
    a, b = _db(), _db()
    assert a.digest() == b.digest()
    names = [r["Name"] for r in a.rows("restaurant")]
    assert names == ["Cactus Club", "Tamarind", "Legume", "Lucca", "The Porch"]
    assert len(a.rows("plane")) == 20
    assert len({r["id"] for r in a.rows("plane")}) == 20  # unique ids
    assert load_star_database(STAR, ["plane"], seed=1).digest() != load_star_database(STAR, ["plane"], seed=0).digest()


def test_star_api_schema_is_openai_function_schema() -> None:
    schema = star_tool(load_star_api(STAR, "restaurant_book")).schema()
    fn = schema["function"]
    assert schema["type"] == "function" and fn["name"] == "restaurant_book"
    params = fn["parameters"]
    assert params["required"] == ["Name", "Time", "PartySize", "CustomerName", "RequestType"]
    assert params["additionalProperties"] is False
    assert params["properties"]["PartySize"] == {
        "type": "integer",
        "description": "Party Size",
        "minimum": 2,
        "maximum": 50,
    }
    assert params["properties"]["RequestType"]["enum"] == ["Check", "Book"]


def test_bad_calls_come_back_as_counted_tool_errors_never_raise() -> None:
    box, db = _restaurant_box(), _db()
    r = box.execute("restaurant_cancel", {}, db)
    assert (r.error, r.content) == (
        "unknown_tool",
        "unknown tool 'restaurant_cancel' (tools: restaurant_search, restaurant_book)",
    )
    assert box.execute("restaurant_search", "{not json", db).error == "bad_json"
    r = box.execute(
        "restaurant_book",
        {"Name": "Lucca", "Time": "7 pm", "PartySize": 1, "CustomerName": "Alex Sample", "RequestType": "Book"},
        db,
    )
    assert (r.error, r.content) == ("invalid_arguments", "PartySize: 1 is below the minimum 2")
    r = box.execute("restaurant_search", {"Food": "Pizzza", "Colour": "red"}, db)
    assert r.error == "invalid_arguments"
    assert r.content.startswith("Food: 'Pizzza' is not one of Pizza, Chinese")
    assert "unknown argument 'Colour'" in r.content
    assert json.loads(r.text()) == {"error": r.content}

    def explode(x: int) -> int:
        """A user's tool that fails."""
        raise RuntimeError("synthetic failure")

    own = ToolBox([Tool.from_function(explode)])
    assert own.tools[0].parameters == {
        "type": "object",
        "properties": {"x": {"type": "integer"}},
        "required": ["x"],
        "additionalProperties": False,
    }
    r = own.execute("explode", {"x": 1}, db)
    assert (r.error, r.content) == ("execution_error", "explode failed: RuntimeError: synthetic failure")


def test_search_returns_matching_rows_and_booking_writes_only_the_conversations_copy() -> None:
    base, box = _db(), _restaurant_box()
    mine = base.copy()
    thai = [r for r in base.rows("restaurant") if r["Food"] == "Thai"]
    assert box.execute("restaurant_search", {"Food": "thai"}, mine).error == "invalid_arguments"  # the enum's spelling
    res = box.execute("restaurant_search", {"Food": "Thai"}, mine)
    assert res.ok and res.content["count"] == len(thai) and res.content["items"] == thai
    bookable = next(r for r in base.rows("restaurant") if r["TakesReservations"])
    args = {
        "Name": bookable["Name"],
        "Time": "7 pm",
        "PartySize": 2,
        "CustomerName": "Alex Sample",
        "RequestType": "Book",
    }
    assert box.execute("restaurant_book", args, mine).content["ReservationStatus"] == "Reservation Confirmed"
    again = box.execute("restaurant_book", args, mine).content
    assert again["note"] == "this booking was already made"
    assert mine.bookings() == {
        "restaurant_bookings": [
            {"Name": bookable["Name"], "Time": "7 pm", "PartySize": 2, "CustomerName": "Alex Sample"}
        ]
    }
    assert base.bookings() == {}  # the shared database is untouched
    # free text is compared without case or extra spaces
    spelled = {"restaurant_bookings": [{**mine.bookings()["restaurant_bookings"][0], "CustomerName": " alex  SAMPLE"}]}
    assert state_matches(mine.bookings(), spelled)
    closed = next((r for r in base.rows("restaurant") if not r["TakesReservations"]), None)
    if closed is not None:
        out = box.execute("restaurant_book", {**args, "Name": closed["Name"]}, mine).content
        assert out["ReservationStatus"] == "Reservation Failed"


# -- goals and success -----------------------------------------------------------------------


def test_every_goal_singles_out_its_row_and_expects_one_booking() -> None:
    db = _db()
    apis = {n: load_star_api(STAR, n) for s in TASKS.values() for n in (s.search_api, s.book_api)}
    box = {t: ToolBox([star_tool(apis[s.search_api]), star_tool(apis[s.book_api])]) for t, s in TASKS.items()}
    for spec in TASKS.values():
        for g in make_goals(spec, db, apis, 4):
            search = g.required_calls[0]
            found = box[spec.name].execute(search.name, search.arguments, db.copy()).content
            assert found["items"] == [g.target], (spec.name, search.arguments)
            (rows,) = g.expected.values()
            assert len(rows) == 1 and rows[0]["CustomerName"] == g.facts[-1].value
            # the required booking call, run on a fresh copy, reaches the expected state
            fresh = db.copy()
            book = g.required_calls[1]
            assert box[spec.name].execute(book.name, book.arguments, fresh).ok
            assert state_matches(fresh.bookings(), g.expected)
    assert make_goals(TASKS["plane_book"], db, apis, 3) == make_goals(TASKS["plane_book"], db, apis, 3)


def _goal_and_box() -> tuple[Any, ToolBox, Database]:
    db = _db()
    apis = {n: load_star_api(STAR, n) for n in ("restaurant_search", "restaurant_book")}
    goal = make_goals(TASKS["restaurant_book"], db, apis, 1)[0]
    return goal, _restaurant_box(), db


def test_right_words_wrong_row_is_a_failure() -> None:
    goal, box, db = _goal_and_box()
    mine = db.copy()
    booking = dict(goal.required_calls[1].arguments)
    other = next(
        r
        for r in db.rows("restaurant")
        if r["Name"] != goal.target["Name"] and r["TakesReservations"] and r["MaxPartySize"] >= booking["PartySize"]
    )
    wrong = {**booking, "Name": other["Name"]}
    assert box.execute("restaurant_book", wrong, mine).content["ReservationStatus"] == "Reservation Confirmed"
    # what the agent says is beside the point: only the state counts
    said = f"Your table at {goal.target['Name']} is confirmed for {booking['Time']}."
    assert goal.target["Name"] in said
    v = verdict(
        goal,
        mine.bookings(),
        [("restaurant_search", goal.required_calls[0].arguments, True), ("restaurant_book", wrong, True)],
        "end_signal",
        3,
    )
    assert v == {
        "success": False,
        "state_matches": False,
        "partial_credit": 0.5,
        "required_calls_done": ["restaurant_search"],
    }
    right = db.copy()
    box.execute("restaurant_book", booking, right)
    ok = verdict(goal, right.bookings(), [("restaurant_book", booking, True)], "end_signal", 3)
    assert ok == {
        "success": True,
        "state_matches": True,
        "partial_credit": 0.5,
        "required_calls_done": ["restaurant_book"],
    }
    # the right state in a conversation that errored, or that has no answer, is no success
    assert verdict(goal, right.bookings(), [], "error", 3)["success"] is False
    assert verdict(goal, right.bookings(), [], "end_signal", 0)["success"] is False
    # a second, extra booking breaks the state too
    box.execute("restaurant_book", wrong, right)
    assert verdict(goal, right.bookings(), [], "end_signal", 3)["success"] is False


def test_pass_hat_k_is_the_chance_k_samples_all_succeed() -> None:
    assert pass_hat_k([True, True, False], 1) == pytest.approx(2 / 3)
    assert pass_hat_k([True, True, False], 2) == pytest.approx(1 / 3)
    assert pass_hat_k([True, True, False], 3) == 0.0
    assert pass_hat_k([True, True, True], 3) == 1.0
    assert pass_hat_k([True], 2) is None


def test_simulator_errors_are_told_apart() -> None:
    goal, _, _ = _goal_and_box()
    cats = {
        "Food": ["Pizza", "Chinese", "Indian", "Burgers", "Italian", "Thai", "Steak"],
        "Location": ["South", "West", "East", "North", "Center"],
        "Cost": ["Cheap", "Moderate", "Expensive"],
        "Time": ["6 pm", "7 pm", "8 pm", "9 pm"],
    }
    facts = {f.field: f.value for f in goal.facts}
    clean = [f"I would like {facts['Food']} food.", f"Around {facts['Location']}, please."]
    assert simulator_errors(goal, clean, cats, "end_signal") == []
    everything = " ".join(str(f.value) for f in goal.facts)
    assert simulator_errors(goal, [everything], cats, "end_signal") == ["leaked_goal"]
    other_food = next(c for c in cats["Food"] if c != facts["Food"] and c not in {str(v) for v in facts.values()})
    assert simulator_errors(goal, [f"Actually I want {other_food} food."], cats, "end_signal") == ["contradicted_goal"]
    assert simulator_errors(goal, ["How can I help you today?"], cats, "end_signal") == ["broke_role"]
    assert simulator_errors(goal, ["Hello there.", "What a lovely day."], cats, "end_signal") == ["ignored_goal"]
    assert simulator_errors(goal, [clean[0], "Welcome to our restaurant!"], cats, "end_signal") == ["broke_role"]
    assert simulator_errors(goal, clean, cats, "role_flip") == ["broke_role"]


def test_text_call_format_parses_blocks_json_and_counts_broken_ones() -> None:
    calls, rest, bad = parse_text_calls(
        'Let me look. <tool_call>{"name": "restaurant_search", "arguments": {"Food": "Thai"}}</tool_call>'
    )
    assert (calls, rest, bad) == ([("restaurant_search", {"Food": "Thai"})], "Let me look.", 0)
    assert parse_text_calls('{"name": "plane_book", "arguments": {"id": 3}}')[0] == [("plane_book", {"id": 3})]
    assert parse_text_calls("<tool_call>{name: oops}</tool_call>") == ([], "", 1)
    assert parse_text_calls("Sure, which day?") == ([], "Sure, which day?", 0)


# -- end to end on the fake server -------------------------------------------------------------


def _cfg(url: str, **kw: Any) -> AgentToolsConfig:
    b = {"kind": "http", "base_url": url, "model": "fake"}
    return AgentToolsConfig(user=b, agent=b, **{"goals_per_task": 1, "samples": 2, "concurrency": 4, **kw})


def _records(out: Path) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in (out / "conversations.jsonl").read_bytes().splitlines()]


def test_fake_server_run_succeeds_on_state_and_exports_check_clean(tmp_path: Path) -> None:
    with FakeOpenAIServer(reply=agentic_reply()) as srv:
        summary = agentic(_cfg(srv.base_url), tmp_path / "run", progress=False)
        tool_bodies = [b for b in srv.requests if b.get("tools")]
    every = summary["tasks"]["all"]
    assert (summary["conversations"], summary["kept"]) == (6, 6)
    assert every["success"] == 1.0 and every["pass^1"] == 1.0 and every["pass^2"] == 1.0
    assert (every["tool_calls"], every["calls_schema_valid"], every["tool_errors"]) == (12, 1.0, 0)
    assert every["calls_per_success"] == 2.0 and every["endings"] == {"end_signal": 6}
    assert {t["function"]["name"] for t in tool_bodies[0]["tools"]} <= {
        "restaurant_search",
        "restaurant_book",
        "hotel_search",
        "hotel_book",
        "plane_search",
        "plane_book",
    }
    for rec in _records(tmp_path / "run"):
        conv = from_record(rec)
        assert [c.name for c in conv.tool_calls][-1].endswith("_book")
        assert conv.role_order_problems() == []
        ev = conv.meta["agentic"]
        assert ev["final_state"] == ev["expected_state"] and ev["success"] is True
    problems, n = check(tmp_path / "run" / "exports" / "openai.jsonl", "openai")
    assert n == 0, problems
    problems, n = check(tmp_path / "run" / "exports" / "llamafactory", "llamafactory")
    assert n == 0, problems
    exported = [json.loads(x) for x in (tmp_path / "run" / "exports" / "openai.jsonl").read_text().splitlines()]
    assert len(exported) == 6 and all(e["tools"] for e in exported)
    assert all(any(m.get("tool_calls") for m in e["messages"]) for e in exported)


def test_wrong_row_agent_fails_though_it_says_confirmed(tmp_path: Path) -> None:
    with FakeOpenAIServer(reply=agentic_reply("wrong_row")) as srv:
        summary = agentic(_cfg(srv.base_url, export=["openai"]), tmp_path / "run", progress=False)
    every = summary["tasks"]["all"]
    assert (every["success"], every["pass^1"], every["partial_credit"]) == (0.0, 0.0, 0.5)
    assert every["failures"] == {"agent": 6} and summary["kept"] == 0 and summary["exports"] == {}
    for rec in _records(tmp_path / "run"):
        last = rec["messages"][-1]
        assert last["role"] == "assistant" and "confirmed" in last["content"]
        assert rec["meta"]["agentic"]["state_matches"] is False


@pytest.mark.parametrize("mistake", ["bad_args", "unknown_tool"])
def test_tool_errors_go_back_to_the_agent_and_are_counted(tmp_path: Path, mistake: str) -> None:
    with FakeOpenAIServer(reply=agentic_reply(mistake)) as srv:  # type: ignore[arg-type]
        summary = agentic(_cfg(srv.base_url), tmp_path / "run", progress=False)
    every = summary["tasks"]["all"]
    assert (every["tool_calls"], every["tool_errors"], every["success"]) == (18, 6, 1.0)
    assert every["calls_schema_valid"] == pytest.approx(12 / 18, abs=1e-4)
    kinds = {k for r in _records(tmp_path / "run") for k in r["meta"]["agentic"]["tool_error_kinds"]}
    assert kinds == {"invalid_arguments" if mistake == "bad_args" else "unknown_tool"}
    # the exported conversations keep the failed call and its error result, and still check clean
    assert check(tmp_path / "run" / "exports" / "openai.jsonl", "openai")[1] == 0


def test_parsed_call_format_runs_without_the_tools_api(tmp_path: Path) -> None:
    with FakeOpenAIServer(reply=agentic_reply()) as srv:
        summary = agentic(_cfg(srv.base_url, tool_format="parsed", export=["openai"]), tmp_path / "run", progress=False)
        assert not any(b.get("tools") for b in srv.requests)
    assert summary["tasks"]["all"]["success"] == 1.0
    assert check(tmp_path / "run" / "exports" / "openai.jsonl", "openai")[1] == 0


def test_resume_keeps_each_conversations_state_no_double_booking(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with FakeOpenAIServer(reply=agentic_reply()) as srv:
        cfg = _cfg(srv.base_url, export=["openai"])
        agentic(cfg, out, progress=False)
        before = {r["id"]: r for r in _records(out)}
        lines = (out / "conversations.jsonl").read_bytes().splitlines(keepends=True)
        (out / "conversations.jsonl").write_bytes(b"".join(lines[:2]))  # killed after two conversations
        sent = len(srv.requests)
        summary = agentic(cfg, out, progress=False)
        assert len(srv.requests) == sent  # the rest replayed from the call cache
    after = {r["id"]: r for r in _records(out)}
    assert after.keys() == before.keys() and summary["tasks"]["all"]["success"] == 1.0
    world = build_world(cfg)
    for rid, rec in after.items():
        ev = rec["meta"]["agentic"]
        assert ev["final_state"] == before[rid]["meta"]["agentic"]["final_state"]
        (rows,) = ev["final_state"].values()
        assert len(rows) == 1  # one booking, not two
        conv = from_record(rec)
        rebuilt = replay(conv.messages, world.db, world.toolboxes[ev["task"]])
        assert rebuilt.bookings() == ev["final_state"]


def test_a_conversation_that_failed_after_booking_is_retried_on_a_fresh_copy(tmp_path: Path) -> None:
    out = tmp_path / "run"
    reply = agentic_reply()
    state = {"armed": True}

    def flaky(body: dict[str, Any]) -> Any:
        msgs = body.get("messages") or []
        booked = any("Reservation Confirmed" in str(m.get("content") or "") for m in msgs)
        if booked and state["armed"]:
            state["armed"] = False
            srv.inject("401")  # the next request fails for good: that conversation ends on `error`
        return reply(body)

    with FakeOpenAIServer(reply=flaky) as srv:
        cfg = _cfg(srv.base_url, tasks=["plane_book"], samples=1, concurrency=1, export=["openai"])
        first = agentic(cfg, out, progress=False)
        assert first["tasks"]["all"]["endings"] == {"error": 1}
        assert first["tasks"]["all"]["success"] == 0.0
        second = agentic(cfg, out, progress=False)
    assert second["tasks"]["all"]["success"] == 1.0
    (rec,) = _records(out)
    (rows,) = rec["meta"]["agentic"]["final_state"].values()
    assert len(rows) == 1


def test_a_users_python_callable_joins_every_tasks_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "synthetic_tools.py").write_text(
        "from typing import Literal\n\n"
        "def loyalty_points(customer: str, tier: Literal['basic', 'gold'] = 'basic') -> dict:\n"
        '    """Synthetic loyalty points of a customer."""\n'
        "    return {'customer': customer, 'points': 7 if tier == 'gold' else 1}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = _cfg("http://127.0.0.1:9/v1", python_tools=["synthetic_tools:loyalty_points"])
    world = build_world(cfg)
    box = world.toolboxes["hotel_book"]
    assert list(box.by_name) == ["hotel_search", "hotel_book", "loyalty_points"]
    assert box.by_name["loyalty_points"].schema()["function"] == {
        "name": "loyalty_points",
        "description": "Synthetic loyalty points of a customer.",
        "parameters": {
            "type": "object",
            "properties": {"customer": {"type": "string"}, "tier": {"type": "string", "enum": ["basic", "gold"]}},
            "required": ["customer"],
            "additionalProperties": False,
        },
    }
    assert box.execute("loyalty_points", '{"customer": "Alex Sample", "tier": "gold"}', world.db.copy()).content == {
        "customer": "Alex Sample",
        "points": 7,
    }
    assert box.execute("loyalty_points", {"tier": "platinum"}, world.db.copy()).error == "invalid_arguments"
    from dialforge.errors import DialforgeError

    with pytest.raises(DialforgeError, match="python tool 'synthetic_tools': write it as package.module:function"):
        build_world(_cfg("http://127.0.0.1:9/v1", python_tools=["synthetic_tools"]))


def test_simulator_errors_are_counted_apart_from_agent_errors(tmp_path: Path) -> None:
    with FakeOpenAIServer(reply=agentic_reply(user_mistake="contradict")) as srv:
        summary = agentic(_cfg(srv.base_url, samples=1, export=["openai"]), tmp_path / "c", progress=False)
    every = summary["tasks"]["all"]
    assert (every["success"], every["simulator_error_rate"]) == (0.0, 1.0)
    assert every["simulator_errors"] == {"contradicted_goal": 3} and every["failures"] == {"simulator": 3}
    with FakeOpenAIServer(reply=agentic_reply(user_mistake="leak")) as srv:
        summary = agentic(_cfg(srv.base_url, samples=1, export=["openai"]), tmp_path / "l", progress=False)
    every = summary["tasks"]["all"]
    # the agent still did its job: a success, with the simulator's error on record
    assert (every["success"], every["simulator_errors"], every["failures"]) == (1.0, {"leaked_goal": 3}, {})


def test_pass_hat_k_falls_below_pass_1_when_samples_disagree(tmp_path: Path) -> None:
    with FakeOpenAIServer(reply=agentic_reply("every_third_wrong")) as srv:
        cfg = _cfg(srv.base_url, tasks=["plane_book"], samples=3, concurrency=1, export=["openai"])
        summary = agentic(cfg, tmp_path / "run", progress=False)
    row = summary["tasks"]["plane_book"]
    assert (row["conversations"], row["success"]) == (3, pytest.approx(2 / 3, abs=1e-4))
    assert (row["pass^1"], row["pass^2"], row["pass^3"]) == (
        pytest.approx(2 / 3, abs=1e-4),
        pytest.approx(1 / 3, abs=1e-4),
        0.0,
    )
    assert summary["kept"] == 2


def _with_agent(agent_reply: Any) -> Any:
    customer = agentic_reply()

    def reply(body: dict[str, Any]) -> Any:
        system = str(body["messages"][0].get("content") or "")
        return customer(body) if system.startswith("You are role-playing a customer") else agent_reply(body)

    return reply


def test_an_agent_that_never_stops_calling_is_cut_at_the_bound(tmp_path: Path) -> None:
    call = '<tool_call>{"name": "plane_search", "arguments": {}}</tool_call>'
    with FakeOpenAIServer(reply=_with_agent(lambda body: call)) as srv:
        cfg = _cfg(srv.base_url, tasks=["plane_book"], samples=1, tool_format="parsed", max_calls_per_turn=2)
        summary = agentic(cfg, tmp_path / "run", progress=False)
    (rec,) = _records(tmp_path / "run")
    assert rec["meta"]["termination_reason"] == "error"
    assert rec["meta"]["error"] == "the agent kept calling tools after 2 calls in one turn"
    assert rec["meta"]["agentic"]["calls"] == 2 and rec["meta"]["agentic"]["over_limit"] == 1
    assert summary["tasks"]["all"]["failures"] == {"error": 1} and summary["kept"] == 0


def test_an_empty_answer_ends_the_conversation_as_a_failure_not_a_crash(tmp_path: Path) -> None:
    with FakeOpenAIServer(reply=_with_agent(lambda body: "")) as srv:
        summary = agentic(_cfg(srv.base_url, tasks=["hotel_book"], samples=1), tmp_path / "run", progress=False)
    (rec,) = _records(tmp_path / "run")
    assert rec["meta"]["termination_reason"] == "empty_turn"
    assert rec["meta"]["agentic"]["success"] is False and summary["tasks"]["all"]["failures"] == {"agent": 1}


def test_reused_call_ids_and_arguments_that_are_not_json(tmp_path: Path) -> None:
    agent = agentic_reply()
    state = {"broken": 0}

    def sloppy(body: dict[str, Any]) -> Any:
        out = agent(body)
        if isinstance(out, dict):
            for c in out["tool_calls"]:
                c["id"] = "call_0"  # a server that numbers calls per reply
            if state["broken"] < 1 and out["tool_calls"][0]["function"]["name"].endswith("_search"):
                state["broken"] += 1
                out["tool_calls"][0]["function"]["arguments"] = '{"DepartureCity": '
        return out

    with FakeOpenAIServer(reply=_with_agent(sloppy)) as srv:
        cfg = _cfg(srv.base_url, tasks=["plane_book"], samples=1, export=["openai"])
        summary = agentic(cfg, tmp_path / "run", progress=False)
    row = summary["tasks"]["all"]
    assert (row["tool_calls"], row["tool_errors"], row["success"]) == (3, 1, 1.0)
    assert row["calls_parsed"] == pytest.approx(2 / 3, abs=1e-4)
    (rec,) = _records(tmp_path / "run")
    ids = [c["id"] for m in rec["messages"] for c in m.get("tool_calls", [])]
    assert ids == ["call_0", "call_1", "call_2"]
    assert rec["meta"]["agentic"]["tool_error_kinds"] == {"bad_json": 1}
    assert check(tmp_path / "run" / "exports" / "openai.jsonl", "openai")[1] == 0


def test_the_agent_reads_calls_natively_or_as_text_blocks() -> None:
    from dialforge.agentic.policy import Runtime, ToolAgent
    from dialforge.llm.client import LLM
    from dialforge.simulate.simulators import ConvState
    from dialforge.testing import ScriptedChatModel

    llm = LLM(ScriptedChatModel([]))

    goal, box, db = _goal_and_box()
    call = {"id": "call_1", "name": "restaurant_search", "arguments": {"Food": "Thai"}}
    msgs = [
        {"role": "user", "content": "A table, please.", "meta": {}},
        {"role": "assistant", "content": "", "meta": {"tool_calls": [call]}},
        {"role": "tool", "content": '{"count":0,"items":[]}', "meta": {"tool_call_id": "call_1"}},
        {"role": "assistant", "content": "Nothing fits.", "meta": {}},
    ]
    state = ConvState(conv_id="0" * 16, messages=msgs, sample=0, context={"agentic": Runtime(goal, db, box)})
    native = ToolAgent(llm, native=True).view(state, state.context["agentic"], True)
    assert [m["role"] for m in native] == ["system", "user", "assistant", "tool", "assistant"]
    assert native[2] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "restaurant_search", "arguments": '{"Food":"Thai"}'},
            }
        ],
    }
    assert native[3] == {"role": "tool", "tool_call_id": "call_1", "content": '{"count":0,"items":[]}'}
    assert "Tools: restaurant_search, restaurant_book." in native[0]["content"]
    parsed = ToolAgent(llm, native=False).view(state, state.context["agentic"], True)
    assert [m["role"] for m in parsed] == ["system", "user", "assistant", "user", "assistant"]
    assert parsed[2]["content"] == ('<tool_call>{"name":"restaurant_search","arguments":{"Food":"Thai"}}</tool_call>')
    assert parsed[3]["content"] == '<tool_response>{"count":0,"items":[]}</tool_response>'
    assert '{"name":"restaurant_book"' in parsed[0]["content"]  # the schemas are in the prompt
    spent = ToolAgent(llm, native=False).view(state, state.context["agentic"], False)
    assert spent[0]["content"].endswith("answer the customer now, in words.)")
