"""Tools: an OpenAI function schema plus an implementation, executed for real.

Built in: STAR's APIs (`data/star/apis/<api>.json`: input fields, outputs, which are
required, which database) over the drawn database (agentic/database.py). A search
(`generic_sample`, `plane_search`) returns the rows matching every argument given; an API
with a `RequestType` input checks (`Check`) or makes (`Book`) a booking in the
conversation's own copy of the database. A user's own tools are Python callables
(`Tool.from_function`).

`ToolBox.execute` never raises: an unknown tool, arguments that are not JSON or break the
schema, or an implementation that raises come back as an error result the agent reads,
and are counted by kind.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import orjson

from ..errors import DialforgeError
from .database import Database

ToolFn = Callable[[Database, dict[str, Any]], Any]

ERROR_KINDS = ("unknown_tool", "bad_json", "invalid_arguments", "execution_error")


# -- schema checking (the subset of JSON Schema tool schemas use) ---------------------------


_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def schema_errors(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Why `value` breaks `schema` (type, enum, minimum/maximum, required, properties,
    additionalProperties, items), one line each; empty when it fits."""
    where = path or "arguments"
    t = schema.get("type")
    types_ = [t] if isinstance(t, str) else list(t or [])
    if types_ and not any(_TYPE_CHECKS.get(x, lambda v: True)(value) for x in types_):
        return [f"{where}: expected {' or '.join(types_)}, got {type(value).__name__} {value!r:.40}"]
    errors = _value_errors(value, schema, where)
    if isinstance(value, dict):
        errors += _object_errors(value, schema, path, where)
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(value):
            errors += schema_errors(v, schema["items"], f"{where}[{i}]")
    return errors


def _value_errors(value: Any, schema: dict[str, Any], where: str) -> list[str]:
    errors: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        shown = ", ".join(map(str, schema["enum"][:8])) + (", ..." if len(schema["enum"]) > 8 else "")
        errors.append(f"{where}: {value!r:.40} is not one of {shown}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where}: {value} is below the minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{where}: {value} is above the maximum {schema['maximum']}")
    return errors


def _object_errors(value: dict[str, Any], schema: dict[str, Any], path: str, where: str) -> list[str]:
    props = schema.get("properties", {})
    missing = [name for name in schema.get("required", []) if name not in value]
    errors = [f"{where}: missing required argument {name!r}" for name in missing]
    for name, v in value.items():
        if name in props:
            errors += schema_errors(v, props[name], f"{path + '.' if path else ''}{name}")
        elif schema.get("additionalProperties") is False:
            errors.append(f"{where}: unknown argument {name!r} (known: {', '.join(props)})")
    return errors


# -- tools -------------------------------------------------------------------------------


@dataclass
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    fn: ToolFn

    def schema(self) -> dict[str, Any]:
        """OpenAI's function schema."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }

    @classmethod
    def from_function(
        cls,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> Tool:
        """A Python callable as a tool: its keyword arguments are the tool's arguments (the
        schema from its type hints: str, int, float, bool, Literal[...], list[...], unless
        `parameters` is given); a parameter named `db` receives the conversation's database."""
        sig = inspect.signature(fn)
        wants_db = "db" in sig.parameters
        if parameters is None:
            hints = get_type_hints(fn)
            props: dict[str, Any] = {}
            required = []
            for pname, p in sig.parameters.items():
                if pname == "db":
                    continue
                props[pname] = _hint_schema(hints.get(pname, str))
                if p.default is inspect.Parameter.empty:
                    required.append(pname)
            parameters = {"type": "object", "properties": props, "required": required, "additionalProperties": False}

        def call(db: Database, args: dict[str, Any]) -> Any:
            return fn(db=db, **args) if wants_db else fn(**args)

        doc = description or (inspect.getdoc(fn) or "").split("\n\n")[0] or (name or fn.__name__)
        return cls(name or fn.__name__, doc, parameters, call)


def _hint_schema(hint: Any) -> dict[str, Any]:
    origin = get_origin(hint)
    if origin is Literal:
        vals = list(get_args(hint))
        return {"type": _hint_schema(type(vals[0]))["type"], "enum": vals}
    if origin in (list, tuple):
        args = get_args(hint)
        return {"type": "array", "items": _hint_schema(args[0]) if args else {}}
    if origin in (Union, types.UnionType):
        inner = [a for a in get_args(hint) if a is not type(None)]
        return _hint_schema(inner[0]) if len(inner) == 1 else {}
    return {
        str: {"type": "string"},
        int: {"type": "integer"},
        float: {"type": "number"},
        bool: {"type": "boolean"},
        dict: {"type": "object"},
    }.get(hint, {})


@dataclass
class ToolResult:
    content: Any
    error: str | None = None  # one of ERROR_KINDS

    @property
    def ok(self) -> bool:
        return self.error is None

    def text(self) -> str:
        """What the agent reads: the result as JSON (an error as {"error": ...})."""
        body = self.content if self.ok else {"error": self.content}
        return orjson.dumps(body, option=orjson.OPT_SORT_KEYS).decode()


@dataclass
class ToolBox:
    tools: list[Tool]
    by_name: dict[str, Tool] = field(init=False)

    def __post_init__(self) -> None:
        self.by_name = {}
        for t in self.tools:
            if t.name in self.by_name:
                raise DialforgeError(f"two tools named {t.name!r}")
            self.by_name[t.name] = t

    def schemas(self) -> list[dict[str, Any]]:
        return [t.schema() for t in self.tools]

    def execute(self, name: str, arguments: Any, db: Database) -> ToolResult:
        """Run one call on `db`; never raises."""
        tool = self.by_name.get(name)
        if tool is None:
            return ToolResult(f"unknown tool {name!r} (tools: {', '.join(self.by_name)})", "unknown_tool")
        if isinstance(arguments, str):
            try:
                arguments = orjson.loads(arguments) if arguments.strip() else {}
            except orjson.JSONDecodeError:
                return ToolResult(f"the arguments of {name} are not JSON: {arguments[:80]!r}", "bad_json")
        if not isinstance(arguments, dict):
            return ToolResult(f"the arguments of {name} are not a JSON object", "bad_json")
        problems = schema_errors(arguments, tool.parameters)
        if problems:
            return ToolResult("; ".join(problems[:5]), "invalid_arguments")
        try:
            return ToolResult(tool.fn(db, arguments))
        except Exception as e:  # a user's tool that raises is the agent's tool error, not a crash
            return ToolResult(f"{name} failed: {type(e).__name__}: {e}", "execution_error")


# -- STAR's APIs ---------------------------------------------------------------------------

_SEARCH_FUNCTIONS = frozenset({"generic_sample", "plane_search"})
MAX_ITEMS = 5  # rows a search returns (with the total count)


def _norm(v: Any) -> Any:
    return " ".join(v.casefold().split()) if isinstance(v, str) else v


def matches(row: dict[str, Any], args: dict[str, Any]) -> bool:
    """A row fits every argument: equal values (strings without case or extra spaces), or
    one of a list value (an apartment's nearby places)."""
    for k, v in args.items():
        have = row.get(k)
        if isinstance(have, list):
            if _norm(v) not in [_norm(x) for x in have]:
                return False
        elif _norm(have) != _norm(v):
            return False
    return True


def _field_schema(f: dict[str, Any]) -> dict[str, Any]:
    t = f["Type"]
    desc = f.get("ReadableName", f["Name"])
    if t == "Boolean":
        return {"type": "boolean", "description": desc}
    if t == "Integer":
        out: dict[str, Any] = {"type": "integer", "description": desc}
        for k, key in (("Min", "minimum"), ("Max", "maximum")):
            if isinstance(f.get(k), int):
                out[key] = f[k]
        return out
    if t in ("Categorical", "RequestType") and isinstance(f.get("Categories"), list):
        return {"type": "string", "enum": list(f["Categories"]), "description": desc}
    return {"type": "string", "description": desc}


@dataclass(frozen=True)
class StarApi:
    name: str
    spec: dict[str, Any]

    @property
    def domain(self) -> str | None:
        return self.spec.get("db")

    @property
    def is_search(self) -> bool:
        return self.spec.get("function") in _SEARCH_FUNCTIONS

    @property
    def books(self) -> bool:
        return any(f["Name"] == "RequestType" for f in self.spec["input"])

    @property
    def state_fields(self) -> list[str]:
        """The arguments a booking row keeps (the required ones, the request type aside)."""
        return [n for n in self.spec.get("required", []) if n != "RequestType"]

    def parameters(self) -> dict[str, Any]:
        props = {f["Name"]: _field_schema(f) for f in self.spec["input"]}
        return {
            "type": "object",
            "properties": props,
            "required": list(self.spec.get("required", [])),
            "additionalProperties": False,
        }

    def description(self) -> str:
        readable = ", ".join(f.get("ReadableName", f["Name"]) for f in self.spec["input"] if f["Name"] != "RequestType")
        if self.is_search:
            return (
                f"Search the {self.domain} database: returns the rows matching every argument given "
                f"(count and up to {MAX_ITEMS} rows). Arguments: {readable}."
            )
        if self.books:
            return (
                f"Check (RequestType Check) or make (RequestType Book) a {self.domain} booking. Arguments: {readable}."
            )
        return f"{self.name.replace('_', ' ')}. Arguments: {readable}."

    def output_name(self) -> str:
        outs = self.spec.get("output") or []
        return outs[0]["Name"] if outs else "Message"

    def run(self, db: Database, args: dict[str, Any]) -> Any:
        domain = self.domain
        rows = db.rows(domain) if domain else []
        if self.is_search:
            found = [r for r in rows if matches(r, args)]
            return {"count": len(found), "items": found[:MAX_ITEMS]}
        if not self.books:
            found = [r for r in rows if matches(r, {k: v for k, v in args.items() if k in (rows[0] if rows else {})})]
            return {"count": len(found), "items": found[:MAX_ITEMS]}
        return self._book(db, rows, args)

    def _refusal(self, target: dict[str, Any] | None, keys: list[str], args: dict[str, Any]) -> str | None:
        """Why the row `args` names cannot be booked, or None."""
        if target is None:
            return f"no {self.domain} with {keys[0]} {args[keys[0]]!r}"
        if target.get("TakesReservations") is False:
            return f"{target.get('Name')} takes no reservations"
        size, most = args.get("PartySize"), target.get("MaxPartySize")
        if isinstance(size, int) and isinstance(most, int) and size > most:
            return f"parties of at most {most}"
        return None

    def _book(self, db: Database, rows: list[dict[str, Any]], args: dict[str, Any]) -> dict[str, Any]:
        out = self.output_name()
        keys, target = _named_row(rows, args)
        refused = self._refusal(target, keys, args) if keys else None
        if refused:
            return {out: "Reservation Failed", "reason": refused}
        if args.get("RequestType") == "Check":
            return {out: "Available"}
        booking = {k: args[k] for k in self.state_fields if k in args}
        booking |= {k: target[k] for k in keys if target is not None}  # the row's own spelling of its name
        table = f"{self.domain or self.name}_bookings"
        if any(matches(b, booking) and len(b) == len(booking) for b in db.rows(table)):
            return {out: "Reservation Confirmed", "note": "this booking was already made"}
        db.insert(table, booking)
        return {out: "Reservation Confirmed", "booking": booking}


def _named_row(rows: list[dict[str, Any]], args: dict[str, Any]) -> tuple[list[str], dict[str, Any] | None]:
    """The identifying fields `args` gives (`id`, `Name`) and the row they name, if any."""
    keys: list[str] = [k for k in ("id", "Name") if k in args and rows and k in rows[0]]
    if not keys:
        return keys, None
    return keys, next((r for r in rows if matches(r, {k: args[k] for k in keys})), None)


def load_star_api(star_dir: str | Path, name: str) -> StarApi:
    path = Path(star_dir) / "apis" / f"{name}.json"
    try:
        spec = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise DialforgeError(f"{path}: no STAR API named {name!r}") from None
    except orjson.JSONDecodeError as e:
        raise DialforgeError(f"{path}: not JSON ({e})") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("input"), list):
        raise DialforgeError(f"{path}: input: a STAR API has a list of input fields")
    return StarApi(name, spec)


def star_tool(api: StarApi) -> Tool:
    return Tool(api.name, api.description(), api.parameters(), api.run)


def load_python_tool(ref: str) -> Tool:
    """`package.module:attr`: a `Tool`, or a callable made into one."""
    import importlib

    mod_name, _, attr = ref.partition(":")
    if not mod_name or not attr:
        raise DialforgeError(f"python tool {ref!r}: write it as package.module:function")
    try:
        obj = getattr(importlib.import_module(mod_name), attr)
    except (ImportError, AttributeError) as e:
        raise DialforgeError(f"python tool {ref!r}: {e}") from None
    if isinstance(obj, Tool):
        return obj
    if callable(obj):
        return Tool.from_function(obj)
    raise DialforgeError(f"python tool {ref!r}: not a Tool or a callable")
