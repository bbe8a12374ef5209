"""The data model: a conversation is a list of role-tagged messages plus provenance meta."""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

Role = Literal["system", "user", "assistant", "tool"]
ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")


def stable_hash(*parts: Any, length: int = 16) -> str:
    """Hex digest of JSON-serialisable parts; the same parts give the same id in every run."""
    blob = orjson.dumps(list(parts), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(blob).hexdigest()[:length]


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    content: str
    meta: dict[str, Any] = Field(default_factory=dict)

    def to_openai(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.meta:
            out["meta"] = self.meta
        return out


class Conversation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    messages: list[Message]
    meta: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _id_not_empty(cls, v: str) -> str:
        if not v:
            raise ValueError("conversation id must not be empty")
        return v

    @classmethod
    def from_messages(
        cls,
        messages: list[Message] | list[dict[str, Any]],
        meta: dict[str, Any] | None = None,
        id: str | None = None,
    ) -> Conversation:
        """Build a conversation whose id is a hash of its content unless one is given."""
        msgs = [m if isinstance(m, Message) else Message.model_validate(m) for m in messages]
        cid = id or content_id(msgs)
        return cls(id=cid, messages=msgs, meta=meta or {})

    # -- views -------------------------------------------------------------
    def turns(self, role: str) -> list[Message]:
        return [m for m in self.messages if m.role == role]

    @property
    def n_user_turns(self) -> int:
        return sum(1 for m in self.messages if m.role == "user")

    def dialogue(self) -> list[Message]:
        """Messages without the system prompt."""
        return [m for m in self.messages if m.role != "system"]

    def role_order_problems(self) -> list[str]:
        """Why this conversation is not a clean user/assistant alternation. Tool calls and
        tool results sit inside an assistant turn, so they are not counted as turns."""
        problems: list[str] = []
        seq = [m for m in self.messages if m.role != "tool" and m.meta.get("kind") != "tool_call"]
        for i, m in enumerate(seq):
            if m.role == "system" and i != 0:
                problems.append(f"system message at position {i}")
        body = [m for m in seq if m.role != "system"]
        if not body:
            return problems + ["no user or assistant messages"]
        if body[0].role != "user":
            problems.append("does not start with a user turn")
        for i in range(1, len(body)):
            if body[i].role == body[i - 1].role:
                problems.append(f"two {body[i].role} turns in a row at position {i}")
                break
        return problems

    def to_record(self) -> dict[str, Any]:
        """Canonical JSON Lines record (OpenAI `messages` shape)."""
        rec: dict[str, Any] = {"id": self.id, "messages": [m.to_openai() for m in self.messages]}
        if self.meta:
            rec["meta"] = self.meta
        return rec

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_record())


def content_id(messages: list[Message]) -> str:
    return stable_hash([[m.role, m.content] for m in messages])
