"""OpenAssistant's flat message export: a JSON (Lines) list of messages, each
`{message_id | user_message_id, parent_message_id, role: prompter|assistant, text}`, linked
into trees by `parent_message_id`. The whole file is read (a reply may come before its
parent), the trees are rebuilt and read as `oasst` trees: every root-to-leaf thread, cut back
to its last assistant reply."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..conversation import Conversation
from ..errors import RecordError
from ._records import Located, iter_located, located
from .formats import parse_oasst
from .report import ReadReport

_ID_KEYS = ("message_id", "user_message_id")


def is_oasst_message(rec: dict[str, Any]) -> bool:
    """One message of the flat export (not a tree: no `replies`, no `prompt`)."""
    return "parent_message_id" in rec and rec.get("role") in ("prompter", "assistant") and "text" in rec


def is_opening(rec: dict[str, Any]) -> bool:
    """A message that opens a thread (a prompt without a parent): the one seed of its thread;
    answers and prompts inside a thread are none."""
    return rec["role"] == "prompter" and rec["parent_message_id"] is None


def _id_key(rec: dict[str, Any]) -> str:
    return next((k for k in _ID_KEYS if isinstance(rec.get(k), str)), _ID_KEYS[0])


def _check_chains(path: Path, parents: dict[str, str], where: dict[str, Located]) -> None:
    """Follow every message's parents once (iteratively): a cycle, or a thread deeper than
    MAX_DEPTH, is an error at the line of a message on it."""
    depth: dict[str, int] = {}  # known depth below a root or a missing parent
    for start in parents:
        chain: list[str] = []
        on_chain: set[str] = set()
        node: str | None = start
        while node is not None and node not in depth:
            if node in on_chain:
                cycle = chain[chain.index(node) :] + [node]
                shown = " -> ".join(repr(c) for c in cycle[:6]) + (" -> ..." if len(cycle) > 6 else "")
                err = RecordError(f"parent ids form a cycle ({shown})", field="parent_message_id")
                raise located(err, path, where[node]) from None
            chain.append(node)
            on_chain.add(node)
            node = parents.get(node) if node in where else None
        base = depth[node] if node is not None else -1
        for i, n in enumerate(reversed(chain)):
            depth[n] = base + 1 + i
            if depth[n] > MAX_DEPTH:
                err = RecordError(f"a thread deeper than {MAX_DEPTH} messages", field="parent_message_id")
                raise located(err, path, where[n]) from None


def _id(rec: dict[str, Any]) -> str:
    for k in _ID_KEYS:
        if isinstance(rec.get(k), str):
            return str(rec[k])
    raise RecordError("a message without message_id or user_message_id")


def _message_ids(rec: Any, where: dict[str, Located]) -> tuple[str, Any]:
    """(id, parent id) of one message, checked: a message, an id not seen before (`where`), a
    parent that is a string, a number or null and not the message itself."""
    if not isinstance(rec, dict) or not is_oasst_message(rec):
        raise RecordError("not an OASST message ({parent_message_id, role, text})")
    mid = _id(rec)
    if mid in where:
        first = where[mid]
        at = f"line {first.line}" if first.line else f"record {first.index + 1}"
        raise RecordError(f"message id {mid!r} again (first at {at})", field=_id_key(rec))
    parent = rec.get("parent_message_id")
    if parent is not None and not isinstance(parent, (str, int)):
        raise RecordError(f"expected a string or null, got {type(parent).__name__}", field="parent_message_id")
    if parent is not None and str(parent) == mid:
        raise RecordError(f"message {mid!r} is its own parent", field="parent_message_id")
    return mid, parent


#: Deepest thread read (OASST's run to ~20 messages); deeper ones are refused by line, since
#: the tree reader walks them recursively.
MAX_DEPTH = 500


def read_oasst_messages(path: Path, report: ReadReport) -> list[Conversation]:
    """The threads of every tree in the file, roots in file order. A message id given twice,
    a message that is its own parent, parent ids that form a cycle and threads deeper than
    MAX_DEPTH are each one error naming file:line:field."""
    nodes: dict[str, dict[str, Any]] = {}
    roots: list[str] = []
    children: dict[str, list[str]] = {}
    parents: dict[str, str] = {}
    where: dict[str, Located] = {}
    for loc in iter_located(path):
        if isinstance(loc, RecordError):
            raise loc
        report.records += 1
        rec = loc.rec
        try:
            mid, parent = _message_ids(rec, where)
        except RecordError as e:
            raise located(e, path, loc) from None
        where[mid] = loc
        nodes[mid] = {"text": rec["text"], "role": rec["role"], "message_id": mid, "replies": []}
        if parent is None:
            roots.append(mid)
        else:
            children.setdefault(str(parent), []).append(mid)
            parents[mid] = str(parent)
    _check_chains(path, parents, where)
    for parent, kids in children.items():
        if parent in nodes:  # a reply whose parent is missing from the file has no thread
            nodes[parent]["replies"] = [nodes[k] for k in kids]
    out: list[Conversation] = []
    for root in roots:
        for conv in parse_oasst({"message_tree_id": root, "prompt": nodes[root]}):
            conv.meta["source"] = "oasst-messages"
            out.append(conv)
    report.conversations = len(out)
    return out
