"""Structured output: JSON schemas from pydantic models, length bounds for constrained
decoding, and tolerant parsing (with small repairs) of replies."""

from __future__ import annotations

import ast
import functools
import json
import re
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

T = TypeVar("T", bound=BaseModel)

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S)


def strict_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema in the strict form servers accept: every property required,
    no additional properties, no titles. Built once per model class (pydantic's schema
    generation cost ~7 ms of CPU per structured call in strategy mode); each call gets its
    own copy."""
    return orjson.loads(_strict_schema_json(model))


@functools.lru_cache(maxsize=256)
def _strict_schema_json(model: type[BaseModel]) -> bytes:
    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            node = {k: fix(v) for k, v in node.items() if k != "title"}
            if node.get("type") == "object" and "properties" in node:
                node["required"] = list(node["properties"])
                node["additionalProperties"] = False
            return node
        if isinstance(node, list):
            return [fix(v) for v in node]
        return node

    return orjson.dumps(fix(model.model_json_schema()))


STRING_FLOOR = 80
"""Characters every free string of a bounded schema may hold at least: room for a real
question or sentence. At `max_tokens: 48` the old share gave a strategy instruction 1 character; the
budget grows instead (`bounded_schema`)."""

_NUMBER_CHARS = 24  # what a number may take, counted in the budget (digits, sign, exponent)


def bounded_schema(schema: dict[str, Any], max_tokens: int, floor: int = STRING_FLOOR) -> tuple[dict[str, Any], int]:
    """A copy of `schema` whose free strings and arrays are bounded, and the most characters
    its JSON can then take. Without the bound a weak model under a grammar can fill one
    string until the token budget runs out and the reply is cut mid-JSON.

    The strings share about `max_tokens` characters, each at least `floor` (a schema's own
    smaller `maxLength` is kept) and none empty (a 135M model under a grammar wrote
    `"strategy": ""`); arrays hold the items the schema asks for (`maxItems`,
    4 when it is silent). The budget returned is at least `max_tokens`; callers size the
    generation limit from it (a token is at least one character of ASCII text)."""
    strings: list[tuple[dict[str, Any], int]] = []
    overhead = 2

    def walk(node: Any, mult: int) -> Any:
        nonlocal overhead
        if isinstance(node, list):
            return [walk(v, mult) for v in node]
        if not isinstance(node, dict):
            return node
        if node.get("type") == "array":
            # as many items as the schema asks for (a ranker may want 50), 4 when it is silent
            node = {**node, "maxItems": node.get("maxItems", 4)}
            mult *= node["maxItems"]
        node = {k: walk(v, mult) for k, v in node.items()}
        t = node.get("type")
        if t == "string" and "enum" not in node:
            strings.append((node, mult))
        elif "enum" in node:
            overhead += (max((len(json.dumps(v)) for v in node["enum"]), default=4) + 1) * mult
        elif t in ("integer", "number"):
            overhead += _NUMBER_CHARS * mult
        elif t in ("boolean", "null"):
            overhead += 6 * mult
        for k in node.get("properties", {}):
            overhead += (len(k) + 6) * mult
        return node

    out = walk(schema, 1)
    slots = sum(m for _, m in strings)
    chars = overhead
    if slots:
        share = max(floor, (max_tokens - overhead - 8) // slots)
        for node, mult in strings:
            node["maxLength"] = min(node.get("maxLength", share), share)
            node.setdefault("minLength", min(1, node["maxLength"]))  # an empty string never answers
            chars += (node["maxLength"] + 3) * mult
    return out, max(max_tokens, chars + 8)


def bound_schema(schema: dict[str, Any], max_tokens: int, floor: int = STRING_FLOOR) -> dict[str, Any]:
    """`bounded_schema` without the budget."""
    return bounded_schema(schema, max_tokens, floor)[0]


_TRAILING_COMMA = re.compile(r",\s*([}\]])")


def _loads_repaired(s: str) -> Any:
    """JSON, or a near miss a small model writes: trailing commas, Python literals or single
    quotes (`{'a': True,}`). Raises json.JSONDecodeError when nothing parses."""
    try:
        return json.loads(s, strict=False)  # strict=False: raw control chars inside strings
    except json.JSONDecodeError as first:
        fixed = _TRAILING_COMMA.sub(r"\1", s)
        try:
            return json.loads(fixed, strict=False)
        except json.JSONDecodeError:
            pass
        try:
            obj = ast.literal_eval(fixed)
        except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
            raise first from None
        if not isinstance(obj, dict | list):
            raise first from None
        return obj


def parse_structured(text: str, model: type[T]) -> T:
    """Parse a reply into `model`: accepts a fenced block or prose around one JSON object.

    Raises ValueError with a short reason on failure.
    """
    s = text.strip()
    m = _FENCE.match(s)
    if m:
        s = m.group(1)
    try:
        obj = _loads_repaired(s)
    except json.JSONDecodeError:
        start, end = s.find("{"), s.rfind("}")
        if start < 0 or end <= start:
            raise ValueError("no JSON object in the reply") from None
        try:
            obj = _loads_repaired(s[start : end + 1])
        except json.JSONDecodeError as e:
            raise ValueError(f"invalid JSON: {e}") from None
    try:
        return model.model_validate(obj)
    except ValidationError as e:
        errs = "; ".join(f"{'.'.join(map(str, x['loc'])) or '<root>'}: {x['msg']}" for x in e.errors()[:3])
        raise ValueError(f"does not match the schema: {errs}") from None
