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
        values = {v for _, v in facts}
        k, alt = next(((k, a) for k, v in facts for a in _ALTS.get(k, ()) if a != v and a not in values), ("", ""))
        if k:
            said = f"Actually, {k}: {alt}; {said}"
    return f"Hello, I need a booking. {said}." if mine == 0 else f"{said}."


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


def _agent(body: dict[str, Any], mistake: Mistake, bookings: list[int]) -> Any:
    msgs = body["messages"]
    native = bool(body.get("tools"))
    tools = _tools(body)
    if not tools:  # asked to answer in words (the turn's calls are spent)
        return "I am sorry, I could not finish that."
    search = next(n for n in tools if n.endswith("_search"))
    book = next(n for n in tools if n.endswith("_book"))
    told = {_BACK.get(k, k): v for k, v in _told(msgs).items()}
    done = _results(msgs)
    last_user = next((str(m.get("content") or "") for m in reversed(msgs) if m["role"] == "user"), "")
    n = len(msgs)

    def call(name: str, args: dict[str, Any]) -> Any:
        if native:
            return {
                "content": None,
                "tool_calls": [
                    {
                        "id": f"fc_{n}",
                        "type": "function",
                        "function": {"name": name, "arguments": orjson.dumps(args).decode()},
                    }
                ],
            }
        return f"<tool_call>{orjson.dumps({'name': name, 'arguments': args}).decode()}</tool_call>"

    booked = [r for r in done if isinstance(r, dict) and any(str(v).startswith("Reservation") for v in r.values())]
    if booked:
        return "Your reservation is confirmed. Anything else?"
    if "everything" not in last_user and not done:
        return "Thank you. What else should I know?"
    sprops = tools[search]["parameters"]["properties"]
    bprops = tools[book]["parameters"]["properties"]
    if mistake == "unknown_tool" and not any(isinstance(r, dict) and "error" in r for r in done):
        return call("make_booking_now", {"x": 1})
    if mistake == "bad_args" and not any(isinstance(r, dict) and "error" in r for r in done):
        return call(search, {"NoSuchField": "synthetic"})
    found = next((r for r in done if isinstance(r, dict) and "items" in r), None)
    if found is None:
        return call(search, {k: _typed(sprops, k, v) for k, v in told.items() if k in sprops})
    if not found["items"]:
        return "Sorry, I could not find anything that fits."
    row = found["items"][0]
    key = "id" if "id" in bprops else "Name"
    value = row[key]
    bookings[0] += 1
    if mistake == "wrong_row" or (mistake == "every_third_wrong" and bookings[0] % 3 == 0):
        if key == "id":
            value = row[key] + 1
        else:
            value = next(c for c in bprops[key]["enum"] if c != row[key])
    args = {
        key: value,
        **{k: _typed(bprops, k, v) for k, v in told.items() if k in bprops and k != key},
        "RequestType": "Book",
    }
    return call(book, args)


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
