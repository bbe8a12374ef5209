"""Readers for task-oriented dialogue corpora: ConvLab-3 unified format, MultiWOZ 2.1,
SGD / MultiWOZ 2.2, Taskmaster-1/2/3, STAR, ABCD.

The user's goal text (ConvLab-3 `goal.description`, MultiWOZ `goal.message`, STAR
`Scenario.UserTask`, Taskmaster `instruction`) goes to `meta["goal"]`, where self-talk can
take it as a client intent; `meta["task"]` names the task when the corpus does. Consecutive
utterances of one speaker are joined into one turn, so roles alternate.
"""

from __future__ import annotations

import html
import re
from typing import Any

from ..conversation import Conversation
from ..errors import RecordError
from .formats import build, check_object, list_of, missing, text_of, type_name

_TAG = re.compile(r"<[^>]+>")
Turns = list[tuple[str, str, dict[str, Any]]]


def goal_text(raw: Any) -> str | None:
    """A goal as plain text: HTML emphasis removed, a list of sentences joined."""
    if isinstance(raw, list):
        raw = " ".join(x for x in raw if isinstance(x, str))
    if not isinstance(raw, str):
        return None
    text = re.sub(r"\s+", " ", html.unescape(_TAG.sub("", raw))).strip()
    return text or None


def _speaker_turns(turns: list[Any], field: str, speaker: str, text: str, roles: dict[str, str]) -> Turns:
    out: Turns = []
    for i, t in enumerate(turns):
        f = f"{field}[{i}]"
        if not isinstance(t, dict):
            raise RecordError(f"expected an object, got {type_name(t)}", field=f)
        if speaker not in t:
            raise missing(f"{f}.{speaker}", t)
        who = t[speaker]
        role = roles.get(who.lower()) if isinstance(who, str) else None
        if role is None:
            expected = " or ".join(sorted({k.upper() for k in roles}))
            raise RecordError(f"unknown speaker {who!r} (expected {expected})", field=f"{f}.{speaker}")
        out.append((role, text_of(t, text, f"{f}.{text}"), {}))
    return out


# -- ConvLab-3 unified: {dataset, dialogue_id, goal: {description}, turns: [{speaker, utterance}]}

_USER_SYSTEM = {"user": "user", "system": "assistant"}


def parse_convlab3(rec: Any) -> list[Conversation]:
    rec = check_object(rec)
    turns = _speaker_turns(list_of(rec, "turns"), "turns", "speaker", "utterance", _USER_SYSTEM)
    goal = rec.get("goal")
    meta = {
        "source": f"convlab3/{rec.get('dataset')}",
        "source_id": rec.get("dialogue_id"),
        "split": rec.get("data_split"),
        "domains": rec.get("domains"),
        "goal": goal_text(goal.get("description")) if isinstance(goal, dict) else None,
    }
    return [build(turns, meta, merge=True)]


# -- MultiWOZ 2.1 original: {name: {goal: {message}, log: [{text, metadata}]}} ---------------


def parse_multiwoz21(rec: Any) -> list[Conversation]:
    """Turns alternate user/system from the first (the log has no speaker field); the
    dialogue's name (the key in the file) becomes `meta["source_id"]`."""
    rec = check_object(rec)
    log = list_of(rec, "log")
    turns: Turns = []
    for i, t in enumerate(log):
        f = f"log[{i}]"
        if not isinstance(t, dict):
            raise RecordError(f"expected an object, got {type_name(t)}", field=f)
        turns.append(("user" if i % 2 == 0 else "assistant", text_of(t, "text", f"{f}.text"), {}))
    goal = rec.get("goal")
    meta = {
        "source": "multiwoz21",
        "goal": goal_text(goal.get("message")) if isinstance(goal, dict) else None,
        "domains": [d for d, v in goal.items() if isinstance(v, dict) and v and d != "topic"]
        if isinstance(goal, dict)
        else None,
    }
    return [build(turns, meta)]


# -- SGD and MultiWOZ 2.2: {dialogue_id, services, turns: [{speaker: USER|SYSTEM, utterance, frames}]}

_SGD_ROLES = {"user": "user", "system": "assistant"}


def _active_intents(turns: list[Any]) -> list[str]:
    seen: dict[str, None] = {}
    for t in turns:
        for fr in t.get("frames") or [] if isinstance(t, dict) else []:
            state = fr.get("state") if isinstance(fr, dict) else None
            intent = state.get("active_intent") if isinstance(state, dict) else None
            if isinstance(intent, str) and intent != "NONE":
                seen[f"{fr.get('service')}:{intent}"] = None
    return list(seen)


def parse_sgd(rec: Any) -> list[Conversation]:
    rec = check_object(rec)
    raw = list_of(rec, "turns")
    turns = _speaker_turns(raw, "turns", "speaker", "utterance", _SGD_ROLES)
    meta = {
        "source": "sgd",
        "source_id": rec.get("dialogue_id"),
        "services": rec.get("services"),
        "intents": _active_intents(raw) or None,
    }
    return [build(turns, meta, merge=True)]


# -- Taskmaster-1/2/3: {conversation_id, instruction_id?, utterances: [{index, speaker, text}]}

_TASKMASTER_ROLES = {"user": "user", "assistant": "assistant"}


def parse_taskmaster(rec: Any) -> list[Conversation]:
    rec = check_object(rec)
    raw = list_of(rec, "utterances")
    if all(isinstance(u, dict) and isinstance(u.get("index"), int) for u in raw):
        raw = sorted(raw, key=lambda u: u["index"])
    turns = _speaker_turns(raw, "utterances", "speaker", "text", _TASKMASTER_ROLES)
    goal = rec.get("instruction", rec.get("instructions"))
    meta = {
        "source": "taskmaster",
        "source_id": rec.get("conversation_id"),
        "instruction_id": rec.get("instruction_id"),
        "task": rec.get("vertical", rec.get("instruction_id")),
        "goal": goal_text(goal),
    }
    return [build(turns, meta, merge=True)]


# -- STAR: {DialogueID, Events: [{Agent, Action, Text}], Scenario: {UserTask, WizardCapabilities}}

# what the user saw: the wizard's typed or picked messages; `request_suggestions` text is
# the wizard's search query, and queries / knowledge-base returns are not said
_STAR_SAID = {("User", "utter"): "user", ("Wizard", "utter"): "assistant", ("Wizard", "pick_suggestion"): "assistant"}


def parse_star(rec: Any) -> list[Conversation]:
    rec = check_object(rec)
    events = list_of(rec, "Events")
    turns: Turns = []
    for i, e in enumerate(events):
        f = f"Events[{i}]"
        if not isinstance(e, dict):
            raise RecordError(f"expected an object, got {type_name(e)}", field=f)
        agent, action = e.get("Agent"), e.get("Action")
        role = _STAR_SAID.get((agent, action)) if isinstance(agent, str) and isinstance(action, str) else None
        if role is not None:
            turns.append((role, text_of(e, "Text", f"{f}.Text"), {}))
    if not turns:
        raise RecordError("no User/Wizard utterances", field="Events")
    scen: dict[str, Any] = rec["Scenario"] if isinstance(rec.get("Scenario"), dict) else {}
    caps: list[Any] = scen["WizardCapabilities"] if isinstance(scen.get("WizardCapabilities"), list) else []
    tasks = [c["Task"] for c in caps if isinstance(c, dict) and isinstance(c.get("Task"), str)]
    meta = {
        "source": "star",
        "source_id": rec.get("DialogueID"),
        "goal": goal_text(scen.get("UserTask")),
        "task": tasks[0] if len(tasks) == 1 else None,
        "tasks": tasks or None,
        "domains": scen.get("Domains"),
    }
    return [build(turns, meta, merge=True)]


# -- ABCD: {convo_id, scenario: {flow, subflow}, original: [[speaker, text], ...]} ----------

_ABCD_ROLES = {"customer": "user", "agent": "assistant"}


def parse_abcd(rec: Any) -> list[Conversation]:
    """Customer -> user, agent -> assistant; `action` lines (what the agent's tools did) go to
    `meta["actions"]` with the index of the message they follow."""
    rec = check_object(rec)
    lines = list_of(rec, "original")
    turns: Turns = []
    actions: list[dict[str, Any]] = []
    for i, ln in enumerate(lines):
        f = f"original[{i}]"
        if not (isinstance(ln, list) and len(ln) == 2 and all(isinstance(x, str) for x in ln)):
            raise RecordError(f"expected [speaker, text], got {type_name(ln)} {str(ln)[:40]}", field=f)
        who, text = ln
        if who == "action":
            # index of the (merged) message it follows
            runs = sum(1 for j, t in enumerate(turns) if j == 0 or t[0] != turns[j - 1][0])
            actions.append({"after_message": runs - 1, "text": text})
            continue
        if who not in _ABCD_ROLES:
            raise RecordError(f"unknown speaker {who!r} (expected customer, agent or action)", field=f"{f}[0]")
        if not text.strip():
            continue
        turns.append((_ABCD_ROLES[who], text, {}))
    scen: dict[str, Any] = rec["scenario"] if isinstance(rec.get("scenario"), dict) else {}
    flow, sub = scen.get("flow"), scen.get("subflow")
    meta = {
        "source": "abcd",
        "source_id": rec.get("convo_id"),
        "task": re.sub(r"[^a-z0-9]+", "_", f"{flow} {sub}".lower()).strip("_") if flow and sub else None,
        "flow": flow,
        "subflow": sub,
        "actions": actions or None,
    }
    return [build(turns, meta, merge=True)]
