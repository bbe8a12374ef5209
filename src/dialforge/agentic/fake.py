"""Scripted roles for `FakeOpenAIServer` (tests, the mechanics benchmark): a customer that
reveals its goal two facts a turn and stops once a booking is confirmed, and an agent that
searches with what it was told, then books the one row found, over the OpenAI tools API
(a request with `tools`) or as `<tool_call>` text (one without). `mistake` makes the agent
wrong on purpose: `wrong_row` books another row while saying the right words, `bad_args`
first sends arguments that break the schema, `unknown_tool` first calls a tool that does
not exist.

    FakeOpenAIServer(reply=agentic_reply()).start()
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal

import orjson

_FACTS = re.compile(r"What you know: (.*?)\.\s+Keep this to yourself", re.S)
_PAIR = re.compile(r"([A-Za-z][A-Za-z \-]*?): ([^;]+)")
Mistake = Literal["wrong_row", "every_third_wrong", "bad_args", "unknown_tool"] | None
UserMistake = Literal["leak", "contradict"] | None


_CITIES = ("Los Angeles", "San Francisco", "Chicago", "Detroit", "New York City", "Pittsburgh")
_ALTS = {
    "Cuisine": ("Pizza", "Chinese", "Indian"),
    "Location": ("South", "West", "East"),
    "From": _CITIES,
    "To": _CITIES,
    "Cost": ("Cheap", "Moderate", "Expensive"),
}


def _facts(system: str) -> list[tuple[str, str]]:
    m = _FACTS.search(system)
    return [(k.strip(), v.strip()) for k, v in _PAIR.findall(m.group(1))] if m else []


def _user(body: dict[str, Any], facts: list[tuple[str, str]], mistake: UserMistake = None) -> str:
    msgs = body["messages"]
    mine = sum(1 for m in msgs if m["role"] == "assistant")  # the customer's own turns (roles swapped)
    last = next((m["content"] for m in reversed(msgs) if m["role"] == "user"), "")
    if "confirmed" in last.lower() or "could not" in last.lower():
        return "###STOP###"
    if mistake == "leak" and mine == 0:  # the whole goal at once: a simulator error
        return "Hello, I need a booking. " + "; ".join(f"{k}: {v}" for k, v in facts) + "; Note: that is everything"
    pieces = facts[2 * mine : 2 * mine + 2]
    if not pieces:
        return "That is everything I know. Please book it."
    said = "; ".join(f"{k}: {v}" for k, v in pieces)
    if mistake == "contradict" and mine == 1:  # another value than the goal's: a simulator error
        said = _contradiction(facts) + said
    return f"Hello, I need a booking. {said}." if mine == 0 else f"{said}."


def _contradiction(facts: list[tuple[str, str]]) -> str:
    """`Actually, Field: other value; ` naming a value the goal does not hold (or nothing)."""
    values = {v for _, v in facts}
    k, alt = next(((k, a) for k, v in facts for a in _ALTS.get(k, ()) if a != v and a not in values), ("", ""))
    return f"Actually, {k}: {alt}; " if k else ""


def _told(msgs: list[dict[str, Any]]) -> dict[str, str]:
    told: dict[str, str] = {}
    for m in msgs:
        if m["role"] == "user" and not str(m.get("content") or "").startswith("<tool_response>"):
            for k, v in _PAIR.findall(str(m.get("content") or "")):
                told[k.strip().split(". ")[-1]] = v.strip().rstrip(".")
    return told


_BACK = {
    "Cuisine": "Food",
    "Average rating": "AverageRating",
    "From": "DepartureCity",
    "To": "ArrivalCity",
    "Arrival time": "ArrivalTime",
    "Day of the flight": "Date",
    "Check-in day": "StartDate",
    "Check-out day": "EndDate",
    "Party size": "PartySize",
    "Your name": "CustomerName",
}


def _typed(props: dict[str, Any], field: str, value: str) -> Any:
    t = (props.get(field) or {}).get("type")
    if t == "integer":
        return int(value)
    if t == "boolean":
        return value.lower() == "true"
    return value


def _tools(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    if body.get("tools"):
        return {t["function"]["name"]: t["function"] for t in body["tools"]}
    system = body["messages"][0]["content"]
    out = {}
    for line in system.split("The tools (JSON schema):\n", 1)[-1].splitlines():
        if line.startswith("{"):
            fn = orjson.loads(line)
            out[fn["name"]] = fn
    return out


def _results(msgs: list[dict[str, Any]]) -> list[Any]:
    out = []
    for m in msgs:
        text = str(m.get("content") or "")
        if m["role"] == "tool":
            out.append(orjson.loads(text))
        elif m["role"] == "user" and text.startswith("<tool_response>"):
            for part in re.findall(r"<tool_response>(.*?)</tool_response>", text, re.S):
                out.append(orjson.loads(part))
    return out


def _call(native: bool, n: int, name: str, args: dict[str, Any]) -> Any:
    """A tool call as the OpenAI tools API answers it, or as `<tool_call>` text."""
    if native:
        fn = {"name": name, "arguments": orjson.dumps(args).decode()}
        return {"content": None, "tool_calls": [{"id": f"fc_{n}", "type": "function", "function": fn}]}
    return f"<tool_call>{orjson.dumps({'name': name, 'arguments': args}).decode()}</tool_call>"


def _words(done: list[Any], last_user: str) -> str | None:
    """The agent's answer in words when it has nothing to call, or None."""
    if any(isinstance(r, dict) and any(str(v).startswith("Reservation") for v in r.values()) for r in done):
        return "Your reservation is confirmed. Anything else?"
    if "everything" not in last_user and not done:
        return "Thank you. What else should I know?"
    return None


def _wrong_first(mistake: Mistake, done: list[Any], search: str) -> tuple[str, dict[str, Any]] | None:
    """The deliberately wrong first call of `unknown_tool` and `bad_args`, until a tool error came back."""
    if any(isinstance(r, dict) and "error" in r for r in done):
        return None
    if mistake == "unknown_tool":
        return "make_booking_now", {"x": 1}
    if mistake == "bad_args":
        return search, {"NoSuchField": "synthetic"}
    return None


def _booking_args(row: dict[str, Any], bprops: dict[str, Any], told: dict[str, str], wrong: bool) -> dict[str, Any]:
    key = "id" if "id" in bprops else "Name"
    value = row[key]
    if wrong:
        value = row[key] + 1 if key == "id" else next(c for c in bprops[key]["enum"] if c != row[key])
    return {
        key: value,
        **{k: _typed(bprops, k, v) for k, v in told.items() if k in bprops and k != key},
        "RequestType": "Book",
    }


def _agent(body: dict[str, Any], mistake: Mistake, bookings: list[int]) -> Any:
    msgs = body["messages"]
    tools = _tools(body)
    if not tools:  # asked to answer in words (the turn's calls are spent)
        return "I am sorry, I could not finish that."
    search = next(n for n in tools if n.endswith("_search"))
    done = _results(msgs)
    last_user = next((str(m.get("content") or "") for m in reversed(msgs) if m["role"] == "user"), "")
    words = _words(done, last_user)
    if words:
        return words
    wrong = _wrong_first(mistake, done, search)
    if wrong:
        return _call(bool(body.get("tools")), len(msgs), *wrong)
    return _search_or_book(body, tools, search, done, mistake, bookings)


def _search_or_book(
    body: dict[str, Any], tools: dict[str, Any], search: str, done: list[Any], mistake: Mistake, bookings: list[int]
) -> Any:
    """Search with what the customer said; then book the first row found."""
    msgs = body["messages"]
    native, n = bool(body.get("tools")), len(msgs)
    told = {_BACK.get(k, k): v for k, v in _told(msgs).items()}
    found = next((r for r in done if isinstance(r, dict) and "items" in r), None)
    if found is None:
        sprops = tools[search]["parameters"]["properties"]
        return _call(native, n, search, {k: _typed(sprops, k, v) for k, v in told.items() if k in sprops})
    if not found["items"]:
        return "Sorry, I could not find anything that fits."
    book = next(n for n in tools if n.endswith("_book"))
    bookings[0] += 1
    wrong_row = mistake == "wrong_row" or (mistake == "every_third_wrong" and bookings[0] % 3 == 0)
    args = _booking_args(found["items"][0], tools[book]["parameters"]["properties"], told, wrong_row)
    return _call(native, n, book, args)


def agentic_reply(
    mistake: Mistake = None,
    fallback: Callable[[dict[str, Any]], Any] | None = None,
    *,
    user_mistake: UserMistake = None,
) -> Callable[[dict[str, Any]], Any]:
    """A `reply(body)` for `FakeOpenAIServer` playing both roles of agentic self-talk.
    `every_third_wrong`: every third booking call of the server's life names a wrong row (so
    samples of one goal differ: pass^k below pass^1). `user_mistake`: `leak` states the whole
    goal in the first turn, `contradict` names other values than the goal's."""
    bookings = [0]

    def reply(body: dict[str, Any]) -> Any:
        msgs = body.get("messages") or []
        system = str(msgs[0].get("content") or "") if msgs and msgs[0]["role"] == "system" else ""
        if system.startswith("You are role-playing a customer"):
            return _user(body, _facts(system), user_mistake)
        if "booking assistant" in system:
            return _agent(body, mistake, bookings)
        return fallback(body) if fallback else "ok"

    return reply
