"""Success checked on state (tau2-bench): a conversation succeeds when the database it
leaves equals the goal's expected state; partial credit per required call; pass^k over k
samples of one goal. Simulator errors (the user contradicting its goal, leaking it at once,
breaking role) are counted apart from the agent's errors.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from math import comb
from typing import Any

from .database import Database
from .goals import Goal, RequiredCall
from .tools import ToolBox, _norm, matches

# endings that are no verdict on the agent: the conversation itself broke
_BROKEN = frozenset({"error", "empty_turn"})


def _canon(rows: Iterable[dict[str, Any]]) -> list[str]:
    import orjson

    return sorted(orjson.dumps({k: _norm(v) for k, v in r.items()}, option=orjson.OPT_SORT_KEYS).decode() for r in rows)


def state_matches(final: dict[str, list[dict[str, Any]]], expected: dict[str, list[dict[str, Any]]]) -> bool:
    """Every booking table holds exactly the expected rows (as multisets; strings compared
    without case or extra spaces); a table the goal does not name must be empty."""
    for table in set(final) | set(expected):
        if _canon(final.get(table, [])) != _canon(expected.get(table, [])):
            return False
    return True


def call_matches(req: RequiredCall, name: str, args: dict[str, Any], target: dict[str, Any]) -> bool:
    if name != req.name:
        return False
    if req.match == "consistent":
        return matches(target, {k: v for k, v in args.items() if k in target})
    return all(k in args and _norm(args[k]) == _norm(v) for k, v in req.arguments.items())


def verdict(
    goal: Goal,
    final: dict[str, list[dict[str, Any]]],
    calls: list[tuple[str, dict[str, Any], bool]],
    termination: str,
    agent_turns: int,
) -> dict[str, Any]:
    """`calls`: (name, arguments, ran without error) in order. An errored or empty
    conversation never succeeds, whatever its state."""
    ok_calls = [(n, a) for n, a, ok in calls if ok]
    done = [any(call_matches(r, n, a, goal.target) for n, a in ok_calls) for r in goal.required_calls]
    state_ok = state_matches(final, goal.expected)
    broken = termination in _BROKEN or agent_turns == 0
    return {
        "success": bool(state_ok and not broken),
        "state_matches": state_ok,
        "partial_credit": round(sum(done) / len(done), 4) if done else 0.0,
        "required_calls_done": [r.name for r, d in zip(goal.required_calls, done, strict=True) if d],
    }


def replay(messages: Iterable[Any], db: Database, toolbox: ToolBox) -> Database:
    """The state a conversation left: its recorded tool calls run again, in order, on a
    fresh copy of the database (what a resumed run rebuilds instead of trusting memory)."""
    fresh = db.copy()
    for m in messages:
        for c in getattr(m, "tool_calls", None) or []:
            toolbox.execute(c.name, c.arguments, fresh)
    return fresh


def pass_hat_k(successes: list[bool], k: int) -> float | None:
    """tau-bench's pass^k for one task instance: the chance that k samples drawn from its n
    trials all succeed, C(c, k) / C(n, k); None when there are fewer than k trials."""
    n, c = len(successes), sum(successes)
    if n < k or k < 1:
        return None
    return comb(c, k) / comb(n, k)


# -- simulator errors ------------------------------------------------------------------------

_AGENT_VOICE = re.compile(
    r"\b(how (can|may) i (help|assist)|(can|may) i (help|assist) you|welcome to (our|the)\b|"
    r"i('| ha)ve (booked|reserved|made the (booking|reservation))|your (booking|reservation) is confirmed|"
    r"as an ai\b|i am an ai\b|i'?m (just |only )?an ai\b)|<tool_call>|\"arguments\"\s*:",
    re.I,
)


def _says(text: str, value: Any) -> bool:
    v = str(value)
    return bool(v) and re.search(rf"(?<![\w]){re.escape(v)}(?![\w])", text, re.I) is not None


def _disclosure(goal: Goal, user_turns: list[str]) -> dict[str, bool]:
    sayable = [f for f in goal.facts if isinstance(f.value, str) and len(f.value) >= 3]
    said = [[_says(t, f.value) for f in sayable] for t in user_turns]
    return {
        "leaked_goal": bool(said) and len(sayable) >= 3 and all(said[0]),
        "ignored_goal": len(user_turns) >= 2 and bool(sayable) and not any(map(any, said)),
    }


def _contradicts(turn: str, goal: Goal, categories: dict[str, list[str]]) -> bool:
    """`turn` names another allowed value of a field the goal fixes, and not the goal's."""
    goal_values = {_norm(str(f.value)) for f in goal.facts}
    for f in goal.facts:
        others = [c for c in categories.get(f.field, []) if _norm(str(c)) not in goal_values and len(str(c)) >= 3]
        if any(_says(turn, c) for c in others) and not _says(turn, f.value):
            return True
    return False


def simulator_errors(
    goal: Goal, user_turns: list[str], categories: dict[str, list[str]], termination: str
) -> list[str]:
    """What the simulated user did wrong: `leaked_goal` (the first turn states every fact of
    a goal of three or more), `ignored_goal` (two turns or more and not one fact of the goal
    in any), `contradicted_goal` (a turn names another value of a field the goal fixes, and
    not the goal's), `broke_role` (a turn in the agent's voice, or the dialogue ended on a
    role flip). `categories`: the allowed values per field."""
    found = {
        **_disclosure(goal, user_turns),
        "contradicted_goal": any(_contradicts(turn, goal, categories) for turn in user_turns),
        "broke_role": termination == "role_flip" or any(_AGENT_VOICE.search(t) for t in user_turns),
    }
    return [name for name, hit in found.items() if hit]
