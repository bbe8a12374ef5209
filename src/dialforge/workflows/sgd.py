"""Workflows from Schema-Guided Dialogue (SGD) and MultiWOZ 2.2 schema files (same shape:
a JSON list of services, each with `slots` and `intents`).

One workflow per intent: greet and understand the request -> ask each required slot in
schema order (categorical slots offer their values) -> offer each optional slot (with its
default) -> confirm -> call the intent (a tool step `call_<Intent>`, its results as labelled
options, as the STAR importer does for queries) -> inform the result, or the failure (then
offer to change something) -> anything else? -> goodbye. Step texts come from the service,
intent and slot descriptions.

Client intents are sampled from the schema: the intent's description with values for its
categorical slots (`possible_values`), and for free-form slots values seen in SGD dialogue
files when given.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..conversation import stable_hash
from ..errors import DialforgeError
from ..io._records import load_json
from ..io.formats import type_name
from .model import Option, Step, Workflow

MAX_OFFERED_VALUES = 10
_BOOL = {"True": "Yes", "False": "No"}


def _lower_first(text: str) -> str:
    text = text.strip().rstrip(".")
    return text[:1].lower() + text[1:] if text[1:2].islower() or len(text) == 1 else text


def _sid(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower()


def _or_list(values: list[str]) -> str:
    return values[0] if len(values) == 1 else f"{', '.join(values[:-1])} or {values[-1]}"


_EXPECTED = "expected an SGD / MultiWOZ 2.2 schema: a JSON list of services with service_name, slots, intents"


def _check_service(p: Path, i: int, svc: Any) -> None:
    """A schema's record `i`: a service with its name, and named slots and intents."""
    if not isinstance(svc, dict) or not {"service_name", "slots", "intents"} <= svc.keys():
        keys = ", ".join(map(str, list(svc)[:12])) if isinstance(svc, dict) else f"a JSON {type_name(svc)}"
        raise DialforgeError(f"{p}[record {i}]: {_EXPECTED}; found keys: {keys}")
    for key in ("slots", "intents"):
        if not isinstance(svc[key], list) or not all(isinstance(x, dict) and "name" in x for x in svc[key]):
            raise DialforgeError(f"{p}[record {i}]: field '{key}': expected a list of objects with a name")


def load_schema(path: str | Path) -> tuple[Path, list[dict[str, Any]]]:
    """The services of a schema file (or of `schema.json` in a folder), checked for shape."""
    p = Path(path)
    if p.is_dir():
        p = p / "schema.json"
    if not p.exists():
        raise DialforgeError(f"{p}: SGD / MultiWOZ 2.2 schema file not found")
    data = load_json(p)
    if isinstance(data, dict):
        raise DialforgeError(f"{p}: {_EXPECTED}; found an object with keys: {', '.join(map(str, list(data)[:12]))}")
    if not isinstance(data, list) or not data:
        raise DialforgeError(f"{p}: {_EXPECTED}; found a JSON {type_name(data) if data != [] else 'empty list'}")
    for i, svc in enumerate(data):
        _check_service(p, i, svc)
    return p, data


def _slot_step(slot: dict[str, Any], nxt: str) -> Step:
    desc = _lower_first(slot.get("description") or slot["name"].replace("_", " "))
    values = [str(v) for v in slot.get("possible_values") or []]
    if slot.get("is_categorical") and 0 < len(values) <= MAX_OFFERED_VALUES:
        shown = [_BOOL.get(v, v) for v in values]
        say = f"Could you tell me {desc}? The options are {_or_list(shown)}."
        options = [Option(answer=v, next=nxt) for v in dict.fromkeys(shown)]
        return Step(say=say, options=options)
    return Step(say=f"Could you tell me {desc}?", options=[Option(answer=None, next=nxt)])


def _offer_step(slot: dict[str, Any], default: Any, nxt: str) -> Step:
    desc = _lower_first(slot.get("description") or slot["name"].replace("_", " "))
    dflt = "any" if str(default).lower() == "dontcare" else _BOOL.get(str(default), str(default))
    return Step(
        say=f"Would you like to specify {desc}? Otherwise I will use {dflt}.",
        options=[Option(answer="No, that is fine.", next=nxt), Option(answer=None, next=nxt)],
    )


def _result_say(service_slots: dict[str, Any], intent: dict[str, Any], what: str, required: list[str]) -> str:
    """What the agent says after a successful call: done, what it found, or the result."""
    results = [
        _lower_first(service_slots[s].get("description") or s)
        for s in intent.get("result_slots") or []
        if s in service_slots and s not in required
    ]
    if intent.get("is_transactional"):
        return f"Done: your request to {what} went through."
    if results:
        return f"Here is what I found: {_or_list(results[:4]).replace(' or ', ' and ')}."
    return f"Here is the result of your request to {what}."


def _closing_steps(what: str, call: str, retry: str, done: str) -> dict[str, Step]:
    """Call the intent (a tool step), inform the result or the failure, anything else, goodbye."""
    return {
        call: Step(
            say=f"One moment, I will {what}.",
            options=[
                Option(answer=None, next="inform_result", label="success"),
                Option(answer=None, next="inform_failure", label="failure"),
            ],
        ),
        "inform_result": Step(say=done, options=[Option(answer=None, next="anything_else")]),
        "inform_failure": Step(
            say=f"I am sorry, I could not {what}. Would you like to change something?",
            options=[
                Option(answer="Yes, let me change something.", next=retry),
                Option(answer="No, thank you.", next="anything_else"),
            ],
        ),
        "anything_else": Step(
            say="Is there anything else I can help you with?",
            options=[
                Option(answer="No, that is all. Thank you!", next="goodbye"),
                Option(answer=None, next="goodbye"),
            ],
        ),
        "goodbye": Step(say="You are welcome. Have a great day, goodbye!"),
    }


def _slot_steps(
    slots: dict[str, Any], required: list[str], optional: dict[str, Any], order: list[str]
) -> dict[str, Step]:
    """Ask each required slot, then offer each optional one, in `order`."""
    steps = {order[i]: _slot_step(slots[s], order[i + 1]) for i, s in enumerate(required)}
    for j, (s, default) in enumerate(optional.items()):
        k = len(required) + j
        steps[order[k]] = _offer_step(slots[s], default, order[k + 1])
    return steps


def _confirm_step(slots: dict[str, Any], required: list[str], what: str, call: str, retry: str) -> Step:
    with_slots = [_lower_first(slots[s].get("description") or s) for s in required]
    details = f" with {_or_list(with_slots).replace(' or ', ' and ')}" if with_slots else ""
    return Step(
        say=f"Please confirm: you would like to {what}{details}. Is that right?",
        options=[Option(answer="Yes, that is right.", next=call), Option(answer="No, that is not right.", next=retry)],
    )


def _intent_slots(intent: dict[str, Any], slots: dict[str, Any]) -> tuple[list[str], dict[str, Any], dict[str, str]]:
    """The intent's required and optional slots the service defines, and those it does not (dropped, with why)."""
    named_required = intent.get("required_slots") or []
    named_optional = intent.get("optional_slots") or {}
    required = [s for s in named_required if s in slots]
    optional = {s: v for s, v in named_optional.items() if s in slots}
    why = "slot the intent names but the service does not define: nothing to ask"
    dropped = {s: why for s in [*named_required, *named_optional] if s not in slots}
    return required, optional, dropped


def intent_workflow(service: dict[str, Any], intent: dict[str, Any], file: str = "") -> Workflow:
    """The workflow of one intent of one service (raises DialforgeError when invalid)."""
    slots = {s["name"]: s for s in service["slots"]}
    name = re.sub(r"[^A-Za-z0-9_]+", "_", f"{service['service_name']}_{intent['name']}")
    what = _lower_first(intent.get("description") or intent["name"])
    required, optional, dropped = _intent_slots(intent, slots)
    call = f"call_{intent['name']}"
    order = [f"ask_{_sid(s)}" for s in required] + [f"offer_{_sid(s)}" for s in optional] + ["confirm"]
    first = order[0]
    steps: dict[str, Step] = {
        "greet": Step(
            say=f"Hello! I can help you {_lower_first(service.get('description') or what)}. What would you like to do?",
            options=[Option(answer=f"I would like to {what}.", next=first), Option(answer=None, next=first)],
        )
    }
    steps.update(_slot_steps(slots, required, optional, order))
    retry = order[0] if order[0] != "confirm" else "greet"
    steps["confirm"] = _confirm_step(slots, required, what, call, retry)
    steps.update(_closing_steps(what, call, retry, _result_say(slots, intent, what, required)))
    try:
        return Workflow(
            name=name,
            topic=what,
            agent=f"{service['service_name'].split('_')[0].lower()} assistant",
            start="greet",
            steps=steps,
            source={
                "format": "sgd",
                "file": file,
                "service": service["service_name"],
                "intent": intent["name"],
                "is_transactional": bool(intent.get("is_transactional")),
                "tool_steps": {call: intent["name"]},
                "required_slots": required,
                "optional_slots": optional,
                "dropped": dropped,
            },
        )
    except ValidationError as e:
        raise DialforgeError(f"{file}: {name}: {e.errors()[0]['msg']}") from None


def observed_values(dialogue_files: list[str | Path]) -> dict[tuple[str, str], list[str]]:
    """(service, slot) -> slot values users gave in SGD dialogue files (frames' state)."""
    from ..io._records import iter_records

    out: dict[tuple[str, str], dict[str, None]] = {}
    for path in dialogue_files:
        for rec, _, _ in iter_records(Path(path)):
            for turn in rec.get("turns", []) if isinstance(rec, dict) else []:
                for fr in turn.get("frames", []) if isinstance(turn, dict) else []:
                    state = fr.get("state") if isinstance(fr, dict) else None
                    for slot, vals in (state or {}).get("slot_values", {}).items():
                        for v in vals[:1]:
                            out.setdefault((fr["service"], slot), {})[str(v)] = None
    return {k: list(v) for k, v in out.items()}


def _slot_pool(slot: dict[str, Any], service: str, values: dict[tuple[str, str], list[str]] | None) -> list[str]:
    """The values a client may give for a slot: categorical values, else values seen in dialogues."""
    pool = [str(v) for v in slot.get("possible_values") or []] if slot.get("is_categorical") else []
    return pool or (values or {}).get((service, slot["name"]), [])


def sample_intents(
    service: dict[str, Any],
    intent: dict[str, Any],
    n: int,
    values: dict[tuple[str, str], list[str]] | None = None,
    seed: int = 0,
) -> list[str]:
    """Up to `n` distinct client intents: the request with a value for each slot that has
    known values (categorical `possible_values`, or values seen in dialogues)."""
    slots = {s["name"]: s for s in service["slots"]}
    rng = random.Random(int(stable_hash(service["service_name"], intent["name"], seed), 16))
    what = _lower_first(intent.get("description") or intent["name"])
    required = set(intent.get("required_slots") or [])
    names = list(intent.get("required_slots") or []) + list(intent.get("optional_slots") or {})
    pools = [(slots[s], _slot_pool(slots[s], service["service_name"], values)) for s in names if s in slots]
    out: dict[str, None] = {}
    for _ in range(n * 4):
        out[_one_intent(rng, what, pools, required)] = None
        if len(out) >= n:
            break
    return list(out)


def _one_intent(
    rng: random.Random, what: str, pools: list[tuple[dict[str, Any], list[str]]], required: set[str]
) -> str:
    """The request with a value for each required slot, and for an optional one half the time."""
    parts = []
    for slot, pool in pools:
        if pool and (slot["name"] in required or rng.random() < 0.5):
            v = rng.choice(pool)
            parts.append(f"{_lower_first(slot.get('description') or slot['name'])}: {_BOOL.get(v, v)}")
    return f"{what} ({'; '.join(parts)})" if parts else what


def import_sgd(
    schema: str | Path,
    *,
    dialogues: list[str | Path] | None = None,
    intents_per_workflow: int = 5,
    seed: int = 0,
) -> tuple[list[Workflow], dict[str, str], dict[str, list[str]]]:
    """(workflows, {name: reason it could not import}, {workflow: client intents})."""
    path, services = load_schema(schema)
    values = observed_values(dialogues or [])
    out: list[Workflow] = []
    failed: dict[str, str] = {}
    intents: dict[str, list[str]] = {}
    for svc in services:
        for it in svc["intents"]:
            try:
                wf = intent_workflow(svc, it, path.name)
            except DialforgeError as e:
                failed[f"{svc['service_name']}_{it['name']}"] = str(e)
                continue
            out.append(wf)
            intents[wf.name] = sample_intents(svc, it, intents_per_workflow, values, seed)
    return out, failed, intents
