"""Filter expressions (`dialforge filter --where`): compiled once into closures, bounded.

The grammar is a small, safe subset of Python: comparisons, `and`/`or`/`not`, `+ - * / %`,
`in`, list literals and names of scores or meta fields. Nothing else is evaluated (no calls,
attributes, subscripts, lambdas, comprehensions). Bounds keep one expression from taking a
machine down: its length, its nesting depth and the size of any string or list it builds.

Missing fields are None: arithmetic on None gives None and an ordering comparison with None
is false, so `workflow_depth >= 2` drops conversations without a workflow. Any other type
error (text < number, number + text) or a division by zero stops with one line naming the
expression, the sub-expression and the fields' values: never a silent False.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import DialforgeError

MAX_CHARS = 2000
MAX_DEPTH = 32
#: Largest value an expression may build by +, * or a list literal, nested items counted (a
#: string counts its characters): `[['a'] * 10000] * 10000` holds 10^8 and is refused, so no
#: comparison of built values takes more than ~10^4 steps.
MAX_SEQUENCE = 10_000
#: Work one record's evaluation may do measuring what it builds: a per-record CPU budget.
MAX_STEPS = 100_000

Env = dict[str, Any]
Fn = Callable[[Env], Any]

_ARITH: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Mod: operator.mod,
}
_ORDER: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_EQ: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_CONSTANTS = {"None": None, "True": True, "False": False}
_ALLOWED = (
    ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Compare, ast.Constant, ast.Name, ast.List, ast.Tuple, ast.Set,
    ast.Load, ast.And, ast.Or, ast.Not, ast.USub, ast.UAdd, *_ARITH, *_ORDER, *_EQ,
)  # fmt: skip
_NUMBER = (int, float)


class ExpressionError(DialforgeError):
    """An expression that cannot be evaluated on a record (type error, division by zero)."""


def _depth(tree: ast.AST) -> int:
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        stack.extend((c, d + 1) for c in ast.iter_child_nodes(node))
    return deepest


def _is_seq(v: Any) -> bool:
    return isinstance(v, (str, list))


class _Budget:
    """Steps left for one record's evaluation; `size` charges what it walks."""

    __slots__ = ("left",)

    def __init__(self) -> None:
        self.left = MAX_STEPS

    def size(self, value: Any, cap: int = MAX_SEQUENCE) -> int:
        """Items in `value`, nested ones counted (a string: its length; an empty list: 1), walked no further
        than `cap` (a larger result means "more than cap"). Shared sublists count each time:
        a comparison walks them each time."""
        total, stack = 0, [value]
        while stack:
            v = stack.pop()
            self.left -= 1
            if isinstance(v, str):
                total += max(len(v), 1)
            elif isinstance(v, (list, tuple, set, frozenset)):
                if v:
                    stack.extend(v)  # a list counts its items: ['a'] * 10000 is 10000
                else:
                    total += 1  # [[]] * 10000 is 10000 too
            else:
                total += 1
            if total > cap or self.left < 0:
                break
        if self.left < 0:
            raise _OverBudget(f"more than {MAX_STEPS} steps of work on one record")
        return total


class _OverBudget(Exception):
    pass


def _check_arith(op: type[ast.operator], a: Any, b: Any, budget: _Budget) -> str | None:
    """Why `a op b` is refused, or None. Text and lists only concatenate and repeat, within
    MAX_SEQUENCE items (nested ones counted); `%` on text (printf formatting) is refused."""
    if isinstance(a, _NUMBER) and isinstance(b, _NUMBER):
        return None
    if op is ast.Add and _is_seq(a) and type(a) is type(b):
        if budget.size(a) + budget.size(b) <= MAX_SEQUENCE:
            return None
        return f"the result is longer than {MAX_SEQUENCE} (nested items counted)"
    if op is ast.Mult and (_is_seq(a) and isinstance(b, int) or _is_seq(b) and isinstance(a, int)):
        seq, n = (a, b) if _is_seq(a) else (b, a)
        if max(n, 0) <= MAX_SEQUENCE and budget.size(seq) * max(n, 0) <= MAX_SEQUENCE:
            return None
        return f"repetition beyond {MAX_SEQUENCE} items (nested items counted)"
    return f"unsupported operand types {type(a).__name__} and {type(b).__name__}"


def _parse(text: str) -> ast.expr:
    """The checked syntax tree of a filter expression, or a DialforgeError saying what is wrong."""
    if len(text) > MAX_CHARS:
        raise DialforgeError(f"filter expression is longer than {MAX_CHARS} characters ({len(text)})")
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as e:
        end = len(text.strip())
        # Python reports an expression cut short (`user_turns >=`) at column 0
        where = f"column {e.offset}" if e.offset and e.offset <= end else f"the end (column {end + 1})"
        raise DialforgeError(f"filter expression {text!r}: syntax error at {where} ({e.msg})") from None
    except (RecursionError, MemoryError):
        raise DialforgeError(f"filter expression {text!r}: nested too deeply") from None
    if _depth(tree) > MAX_DEPTH:
        raise DialforgeError(f"filter expression {text!r}: nested deeper than {MAX_DEPTH} levels")
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise DialforgeError(f"filter expression {text!r}: {type(node).__name__.lower()} is not allowed")
        if isinstance(node, ast.Constant) and not (node.value is None or isinstance(node.value, (*_NUMBER, str))):
            raise DialforgeError(f"filter expression {text!r}: constant {node.value!r} is not allowed")
    return tree


class Expression:
    """A compiled filter expression; call it with a record's fields (a dict)."""

    def __init__(self, text: str) -> None:
        self.text = text
        tree = _parse(text)
        self.tree = tree
        self._budget = _Budget()
        self.names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - set(_CONSTANTS)
        self._fn = self._compile(tree)
        self._fast = None if any(isinstance(n, ast.BinOp) for n in ast.walk(tree)) else _fast_path(tree)

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def check_names(self, available: Iterable[str]) -> None:
        unknown = sorted(self.names - set(available))
        if unknown:
            raise DialforgeError(
                f"filter expression {self.text!r}: unknown name {unknown[0]!r} "
                f"(available: {', '.join(sorted(available))})"
            )

    def __call__(self, env: Env) -> bool:
        if self._fast is not None:
            try:
                return bool(self._fast(env))
            except TypeError:  # None in an ordering comparison, or a real type error: checked path
                pass
        self._budget = _Budget()
        try:
            return bool(self._fn(env))
        except _OverBudget as e:
            raise ExpressionError(f"filter expression {self.text!r}: {e}") from None

    # -- compilation: one closure per node, built once ------------------------------------------
    def _fail(self, node: ast.AST, env: Env, why: str) -> ExpressionError:
        names = sorted({n.id for n in ast.walk(node) if isinstance(n, ast.Name)} - set(_CONSTANTS))
        values = ", ".join(f"{n}={env.get(n)!r}"[:80] for n in names)
        where = f" in `{ast.unparse(node)}`" if ast.unparse(node) != self.text.strip() else ""
        return ExpressionError(f"filter expression {self.text!r}: {why}{where}" + (f" ({values})" if values else ""))

    def _compile(self, node: ast.AST) -> Fn:
        if isinstance(node, ast.Constant):
            value = node.value
            return lambda env: value
        if isinstance(node, ast.Name):
            if node.id in _CONSTANTS:
                const = _CONSTANTS[node.id]
                return lambda env: const
            name = node.id
            return lambda env: env.get(name)
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            items = [self._compile(e) for e in node.elts]
            nested = any(isinstance(e, (ast.BinOp, ast.List, ast.Tuple, ast.Set)) for e in node.elts)

            def literal(env: Env) -> list[Any]:
                value = [f(env) for f in items]
                if nested and self._budget.size(value) > MAX_SEQUENCE:
                    raise self._fail(node, env, f"the list holds more than {MAX_SEQUENCE} items (nested items counted)")
                return value

            return literal
        if isinstance(node, ast.BoolOp):
            parts = [self._compile(v) for v in node.values]
            if isinstance(node.op, ast.And):
                return lambda env: all(f(env) for f in parts)
            return lambda env: any(f(env) for f in parts)
        if isinstance(node, ast.UnaryOp):
            return self._unary(node)
        if isinstance(node, ast.BinOp):
            return self._binop(node)
        if isinstance(node, ast.Compare):
            return self._compare(node)
        raise DialforgeError(f"filter expression {self.text!r}: {type(node).__name__} is not supported")

    def _unary(self, node: ast.UnaryOp) -> Fn:
        arg = self._compile(node.operand)
        if isinstance(node.op, ast.Not):
            return lambda env: not arg(env)
        sign = -1 if isinstance(node.op, ast.USub) else 1

        def unary(env: Env) -> Any:
            v = arg(env)
            if v is None:
                return None
            if not isinstance(v, _NUMBER):
                raise self._fail(node, env, f"bad operand type for unary sign: {type(v).__name__}")
            return sign * v

        return unary

    def _binop(self, node: ast.BinOp) -> Fn:
        left, right, kind = self._compile(node.left), self._compile(node.right), type(node.op)
        op = _ARITH[kind]

        def binop(env: Env) -> Any:
            a, b = left(env), right(env)
            if a is None or b is None:
                return None
            why = _check_arith(kind, a, b, self._budget)
            if why is not None:
                raise self._fail(node, env, why)
            try:
                return op(a, b)
            except (ZeroDivisionError, OverflowError) as e:
                raise self._fail(node, env, str(e)) from None

        return binop

    def _compare(self, node: ast.Compare) -> Fn:
        first = self._compile(node.left)
        steps = [(type(o), self._compile(c)) for o, c in zip(node.ops, node.comparators, strict=True)]

        def compare(env: Env) -> bool:
            left = first(env)
            for kind, comp in steps:
                right = comp(env)
                if kind in _ORDER:
                    if left is None or right is None:
                        return False
                    ok = _compare_values(_ORDER[kind], left, right)
                else:
                    ok = _compare_values(_EQ[kind], left, right)
                if ok is None:
                    raise self._fail(node, env, f"cannot compare {type(left).__name__} with {type(right).__name__}")
                if not ok:
                    return False
                left = right
            return True

        return compare


class _Names(ast.NodeTransformer):
    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in _CONSTANTS:
            return ast.copy_location(ast.Constant(_CONSTANTS[node.id]), node)
        get = ast.Attribute(ast.Name("_e", ast.Load()), "get", ast.Load())
        return ast.copy_location(ast.Call(get, [ast.Constant(node.id)], []), node)


def _fast_path(tree: ast.AST) -> Fn:
    """Plain Python bytecode for expressions without arithmetic (nothing there can grow or
    divide): about 30x faster than the checked closures, which handle every exception."""
    body = _Names().visit(ast.parse(ast.unparse(tree), mode="eval").body)
    args = ast.arguments(posonlyargs=[], args=[ast.arg("_e")], kwonlyargs=[], kw_defaults=[], defaults=[])
    lam = ast.Expression(ast.Lambda(args, body))
    ast.fix_missing_locations(lam)
    fn: Fn = eval(compile(lam, "<filter>", "eval"), {"__builtins__": {}})  # noqa: S307 - validated AST
    return fn


def _compare_values(op: Callable[[Any, Any], Any], a: Any, b: Any) -> bool | None:
    try:
        return bool(op(a, b))
    except TypeError:
        return None
