"""A generic field mapping for dialogue files no reader knows: which field holds the turns,
which fields hold each turn's role and text, and how source roles map to ours.

CLI: `--messages dialog --role-field speaker --content-field text --roles human=user,bot=assistant`;
YAML (`--mapping FILE`, or `format: mapping:FILE` wherever a format is named):

    messages: dialog
    role_field: speaker
    content_field: text
    roles: {human: user, bot: assistant}
    id_field: dialog_id
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..conversation import ROLES, Conversation
from ..errors import ConfigError, RecordError
from .formats import build, check_object, meta_of, missing, text_of, type_name


class Mapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    messages: str = Field("messages", description="field holding the list of turns (dotted path)")
    role_field: str = "role"
    content_field: str = "content"
    roles: dict[str, str] = Field(default_factory=dict, description="source role -> user|assistant|system|tool")
    id_field: str | None = Field(None, description="field holding the conversation's source id")

    @field_validator("roles")
    @classmethod
    def _known_targets(cls, v: dict[str, str]) -> dict[str, str]:
        for src, dst in v.items():
            if dst not in ROLES:
                raise ValueError(f"role {src!r} maps to {dst!r}; expected one of {', '.join(ROLES)}")
        return v


def parse_roles(spec: str) -> dict[str, str]:
    """`human=user,gpt=assistant` -> {"human": "user", "gpt": "assistant"}."""
    out = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        if "=" not in part:
            raise ConfigError(f"--roles: {part!r} is not SOURCE=ROLE (e.g. human=user,gpt=assistant)")
        src, dst = (x.strip() for x in part.split("=", 1))
        out[src] = dst
    return out


def make_mapping(**fields: Any) -> Mapping:
    try:
        return Mapping.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise ConfigError(f"mapping: {where}: {err['msg']}") from None


def load_mapping(path: str | Path) -> Mapping:
    from .yaml_files import read_yaml

    data = read_yaml(Path(path), "mapping file")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of fields (messages, role_field, content_field, roles)")
    try:
        return Mapping.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise ConfigError(f"{path}: {where}: {err['msg']}") from None


def _get(rec: dict[str, Any], dotted: str) -> Any:
    cur: Any = rec
    for i, part in enumerate(dotted.split(".")):
        if not isinstance(cur, dict) or part not in cur:
            where = ".".join(dotted.split(".")[:i]) or "the record"
            keys = ", ".join(map(str, list(cur)[:12])) if isinstance(cur, dict) else type_name(cur)
            raise RecordError(f"missing field ({where} has keys: {keys or 'none'})", field=dotted)
        cur = cur[part]
    return cur


def parse_mapped(rec: Any, m: Mapping) -> list[Conversation]:
    rec = check_object(rec)
    raw = _get(rec, m.messages)
    if not isinstance(raw, list) or not raw:
        raise RecordError(f"expected a non-empty list, got {type_name(raw)}", field=m.messages)
    turns: list[tuple[str, str, dict[str, Any]]] = []
    for i, t in enumerate(raw):
        f = f"{m.messages}[{i}]"
        if not isinstance(t, dict):
            raise RecordError(f"expected an object, got {type_name(t)}", field=f)
        if m.role_field not in t:
            raise missing(f"{f}.{m.role_field}", t)
        src = t[m.role_field]
        role = m.roles.get(src, src) if isinstance(src, str) else None
        if role not in ROLES:
            known = ", ".join(m.roles) or ", ".join(ROLES)
            raise RecordError(
                f"unknown role {src!r} (mapped roles: {known}; add it to --roles)", field=f"{f}.{m.role_field}"
            )
        turns.append((str(role), text_of(t, m.content_field, f"{f}.{m.content_field}"), {}))
    meta: dict[str, Any] = {"source": "mapping"}
    if m.id_field:
        meta["source_id"] = _get(rec, m.id_field)
    meta.update(meta_of(rec, "meta") if isinstance(rec.get("meta"), dict | None) else {})
    return [build(turns, meta)]
