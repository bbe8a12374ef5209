"""OpenAssistant's flat message export: a JSON (Lines) list of messages, each
`{message_id | user_message_id, parent_message_id, role: prompter|assistant, text}`, linked
into trees by `parent_message_id`. The whole file is read (a reply may come before its
parent), the trees are rebuilt and read as `oasst` trees: every root-to-leaf thread, cut back
to its last assistant reply."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..conversation import Conversation
from ..errors import RecordError
from ._records import iter_located, located
from .formats import parse_oasst

if TYPE_CHECKING:
    from .reader import ReadReport

_ID_KEYS = ("message_id", "user_message_id")


def is_oasst_message(rec: dict[str, Any]) -> bool:
    """One message of the flat export (not a tree: no `replies`, no `prompt`)."""
    return "parent_message_id" in rec and rec.get("role") in ("prompter", "assistant") and "text" in rec


def _id(rec: dict[str, Any]) -> str:
    for k in _ID_KEYS:
        if isinstance(rec.get(k), str):
            return str(rec[k])
    raise RecordError("a message without message_id or user_message_id")


def read_oasst_messages(path: Path, report: ReadReport) -> list[Conversation]:
    """The threads of every tree in the file, roots in file order."""
    nodes: dict[str, dict[str, Any]] = {}
    roots: list[str] = []
    children: dict[str, list[str]] = {}
    for loc in iter_located(path):
        if isinstance(loc, RecordError):
            raise loc
        report.records += 1
        rec = loc.rec
        try:
            if not isinstance(rec, dict) or not is_oasst_message(rec):
                raise RecordError("not an OASST message ({parent_message_id, role, text})")
            mid = _id(rec)
        except RecordError as e:
            raise located(e, path, loc) from None
        nodes[mid] = {"text": rec["text"], "role": rec["role"], "message_id": mid, "replies": []}
        parent = rec.get("parent_message_id")
        if parent is None:
            roots.append(mid)
        else:
            children.setdefault(str(parent), []).append(mid)
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
