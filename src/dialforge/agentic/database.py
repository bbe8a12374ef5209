"""A task database from STAR's schemas, and a conversation's own copy of it.

STAR ships no table rows: `data/star/dbs/<domain>.json` lists each field's type and values
(categories, integer ranges, fields enabled by other fields, written as `!lambda p: ...`),
and STAR's knowledge base drew rows from them at query time. We draw the rows once, from a
seed, so every conversation of a run sees the same database: one row per name where a
domain's rows are named (hotels, restaurants, movies, apartments), `rows` rows otherwise,
unique ids where a domain has an `id`. The `!` expressions are read by a small evaluator
(field look-ups, arithmetic, comparisons, `and`/`or`, `list(combinations([...], n))`),
never by `eval`.

Bookings are rows in `<domain>_bookings` tables; a conversation writes to its own copy
(`Database.copy`), so conversations never see each other's bookings.
"""

from __future__ import annotations

import ast
import itertools
import operator
import random
from pathlib import Path
from typing import Any

import orjson

from ..conversation import stable_hash
from ..errors import DialforgeError

# domains whose rows are named: one row per name (a booking names the row)
NAMED_DOMAINS = frozenset({"hotel", "restaurant", "movie", "apartment"})


_BINOPS: dict[type[ast.operator], Any] = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}
_COMPARE: dict[type[ast.cmpop], Any] = {
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Eq: operator.eq,
    ast.In: lambda a, b: a in b,
}
_CALLS: dict[str, Any] = {
    "list": lambda xs: list(xs),
    "combinations": lambda xs, k: [list(c) for c in itertools.combinations(xs, k)],
}


class _Eval(ast.NodeVisitor):
    """The `!` expressions of STAR's schemas, evaluated on the row drawn so far: constants,
    lists, `p[key]` (the row), + - *, and/or, one comparison, `list()` and `combinations()`.
    One `visit_*` per allowed node; any other node is refused."""

    def __init__(self, row: dict[str, Any]) -> None:
        self.row = row

    def ev(self, node: ast.AST) -> Any:
        return self.visit(node)

    def generic_visit(self, node: ast.AST) -> Any:
        raise ValueError(f"unsupported expression: {ast.dump(node)[:80]}")

    def visit_Expression(self, node: ast.Expression) -> Any:
        return self.visit(node.body)

    def visit_Lambda(self, node: ast.Lambda) -> Any:
        return self.visit(node.body)

    def visit_Constant(self, node: ast.Constant) -> Any:
        return node.value

    def visit_List(self, node: ast.List | ast.Tuple) -> Any:
        return [self.visit(e) for e in node.elts]

    visit_Tuple = visit_List

    def visit_Subscript(self, node: ast.Subscript) -> Any:
        if not (isinstance(node.value, ast.Name) and node.value.id == "p"):
            return self.generic_visit(node)
        return self.row.get(self.visit(node.slice))

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        if type(node.op) not in _BINOPS:
            return self.generic_visit(node)
        return _BINOPS[type(node.op)](self.visit(node.left), self.visit(node.right))

    def visit_BoolOp(self, node: ast.BoolOp) -> Any:
        vals = [self.visit(v) for v in node.values]
        return all(vals) if isinstance(node.op, ast.And) else any(vals)

    def visit_Compare(self, node: ast.Compare) -> Any:
        if len(node.ops) != 1 or type(node.ops[0]) not in _COMPARE:
            return self.generic_visit(node)
        a, b = self.visit(node.left), self.visit(node.comparators[0])
        return False if a is None or b is None else _COMPARE[type(node.ops[0])](a, b)

    def visit_Call(self, node: ast.Call) -> Any:
        if not (isinstance(node.func, ast.Name) and node.func.id in _CALLS):
            return self.generic_visit(node)
        return _CALLS[node.func.id](*(self.visit(a) for a in node.args))


def star_expr(value: Any, row: dict[str, Any]) -> Any:
    """A schema value: itself, or what its `!expression` gives on `row`."""
    if isinstance(value, str) and value.startswith("!"):
        return _Eval(row).ev(ast.parse(value[1:].strip(), mode="eval"))
    return value


class FieldError(ValueError):
    """A schema field rows cannot be drawn from: `[index].Name: why`."""


def _draw(fields: list[dict[str, Any]], rng: random.Random, fixed: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for i, f in enumerate(fields):
        name = f.get("Name") if isinstance(f, dict) else None
        if not isinstance(name, str):
            raise FieldError(f"[{i}]: a field is an object with a Name")
        try:
            _draw_field(f, name, row, rng, fixed)
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise FieldError(f"[{i}].{name}: {type(e).__name__}: {e}") from None
    return row


def _draw_field(f: dict[str, Any], name: str, row: dict[str, Any], rng: random.Random, fixed: dict[str, Any]) -> None:
    if name in row:  # a field listed twice (shopping's ItemSize): the first one wins
        return
    if "Enabled" in f and not star_expr(f["Enabled"], row):
        return
    if name in fixed:
        row[name] = fixed[name]
    elif f["Type"] == "Boolean":
        row[name] = rng.random() < 0.5
    elif f["Type"] == "Integer":
        lo, hi = int(star_expr(f["Min"], row)), int(star_expr(f["Max"], row))
        row[name] = rng.randint(lo, max(lo, hi))
    elif f["Type"] == "Categorical":
        cats = star_expr(f["Categories"], row)
        row[name] = rng.choice(cats)
    else:  # strings: STAR's KB left them to the user
        row[name] = f"{name} {rng.randint(1, 99)}"


def draw_rows(domain: str, fields: list[dict[str, Any]], rows: int, seed: int) -> list[dict[str, Any]]:
    """The rows of one domain, drawn from its STAR schema with a seed (the same rows every run)."""
    rng = random.Random(int(stable_hash("star-db", domain, seed), 16))
    names = next((f["Categories"] for f in fields if f["Name"] == "Name" and f["Type"] == "Categorical"), None)
    id_field = next((f for f in fields if f["Name"] == "id" and f["Type"] == "Integer"), None)
    if domain in NAMED_DOMAINS and isinstance(names, list):
        fixed_rows = [{"Name": n} for n in names]
    else:
        fixed_rows = [{} for _ in range(rows)]
    if id_field is not None:
        ids = rng.sample(range(int(id_field["Min"]), int(id_field["Max"]) + 1), len(fixed_rows))
        for fx, i in zip(fixed_rows, ids, strict=True):
            fx["id"] = i
    return [_draw(fields, rng, fx) for fx in fixed_rows]


class Database:
    """Named tables of rows (JSON values). A conversation owns a copy; bookings go to
    `<domain>_bookings`."""

    def __init__(self, tables: dict[str, list[dict[str, Any]]]) -> None:
        self.tables = tables

    def copy(self) -> Database:
        return Database(orjson.loads(orjson.dumps(self.tables)))

    def rows(self, table: str) -> list[dict[str, Any]]:
        return self.tables.get(table, [])

    def insert(self, table: str, row: dict[str, Any]) -> None:
        self.tables.setdefault(table, []).append(dict(row))

    def bookings(self) -> dict[str, list[dict[str, Any]]]:
        """The tables a conversation writes (the state success is checked on)."""
        return {k: [dict(r) for r in v] for k, v in sorted(self.tables.items()) if k.endswith("_bookings")}

    def digest(self) -> str:
        return stable_hash(self.tables)


def load_star_database(star_dir: str | Path, domains: list[str], *, rows: int = 20, seed: int = 0) -> Database:
    """The domains' tables drawn from `star_dir/dbs/<domain>.json`."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for domain in domains:
        path = Path(star_dir) / "dbs" / f"{domain}.json"
        try:
            fields = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            raise DialforgeError(f"{path}: no STAR database for domain {domain!r}") from None
        except orjson.JSONDecodeError as e:
            raise DialforgeError(f"{path}: not JSON ({e})") from None
        try:
            tables[domain] = draw_rows(domain, fields, rows, seed)
        except (KeyError, TypeError, ValueError, IndexError) as e:
            where = f"field {e}" if isinstance(e, FieldError) else f"cannot draw rows ({type(e).__name__}: {e})"
            raise DialforgeError(f"{path}: {where}") from None
    return Database(tables)
