"""The import graph of src/dialforge, read from the source (AST, no imports run).

- Load time: the imports a module runs when it is imported (top-level statements, not under
  `TYPE_CHECKING`) form no cycle. Importing any module never depends on import order (the
  package root imported everything while run/rundir.py imported `__version__` from it: a
  knot of 23 modules, cut by `_version.py`).
- All imports, lazy ones in functions included, form no cycle either (issue 24 removed the
  last five: config <-> llm, io's reader/registry/seeds, the run kernel <-> executors,
  pipeline <-> validate, and simulate/ building workflows' and agentic's modes).
- Layers (LAYERS below, docs/engineering_notes.md "Layers"): a module imports its own layer
  and those below, never one above, lazily or not.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "dialforge"


def _modules() -> dict[str, Path]:
    out = {}
    for p in SRC.rglob("*.py"):
        parts = list(p.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _import_nodes(tree: ast.AST, load_time: bool) -> list[ast.Import | ast.ImportFrom]:
    """Import statements outside `if TYPE_CHECKING:`; with `load_time`, only those that run
    when the module is imported (not inside a function)."""
    out: list[ast.Import | ast.ImportFrom] = []

    def walk(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for x in child.orelse:
                    walk(x, in_function)
                continue
            if isinstance(child, ast.Import | ast.ImportFrom) and not (load_time and in_function):
                out.append(child)
            walk(child, in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda))

    walk(tree, False)
    return out


def _imports(name: str, path: Path, mods: dict[str, Path], load_time: bool) -> set[str]:
    """The dialforge modules `name` imports (`from . import x` is the submodule x)."""
    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for n in _import_nodes(ast.parse(path.read_text()), load_time):
        if isinstance(n, ast.ImportFrom):
            if n.level:
                base = pkg.split(".") if pkg else []
                base = base[: len(base) - (n.level - 1)] if n.level > 1 else base
                target = ".".join([*base, *([n.module] if n.module else [])])
            elif (n.module or "").startswith("dialforge"):
                target = (n.module or "").removeprefix("dialforge").lstrip(".")
            else:
                continue
            subs = [f"{target}.{a.name}".lstrip(".") for a in n.names]
            subs = [x for x in subs if x in mods]
            out.update(subs or ([target] if target in mods else []))
        else:
            dotted = [a.name.removeprefix("dialforge.") for a in n.names if a.name.startswith("dialforge.")]
            out.update(t for t in dotted if t in mods)
    out.discard(name)
    return out


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative enough for
    a graph of ~150 nodes)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[set[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _graph(load_time: bool) -> dict[str, set[str]]:
    mods = _modules()
    return {m: _imports(m, p, mods, load_time) for m, p in mods.items()}


def test_no_import_cycle_at_load_time():
    assert _cycles(_graph(load_time=True)) == []


def test_no_import_cycle_even_through_lazy_imports():
    assert _cycles(_graph(load_time=False)) == []


# -- layers: what may import what (docs/engineering_notes.md "Layers") -------------------
# A module may import its own layer and the layers below it, never one above. Ranks by the
# module's first name (`simulate.engine` -> `simulate`); config modules are data and sit low.
LAYERS: list[set[str]] = [
    {"_version", "_lazy", "_cachedir", "errors", "conversation", "markers", "termination", "aio", "quiet"},
    {"tiny", "embedded"},
    {"io"},
    {"llm", "progress", "stats", "testing"},  # testing: the scripted backend and the fake server
    {"config"},
    {"run"},
    {"train", "induce"},
    {"simulate"},
    {"workflows", "agentic", "answer"},
    {"score", "realism", "report", "checks"},
    {"pipeline"},
    {"commands", "cli"},
]
# Upward imports that stay, each with why (module -> module).
ALLOWED_UP: dict[tuple[str, str], str] = {}


def _rank(module: str) -> int:
    head = module.split(".")[0] or module
    for i, layer in enumerate(LAYERS):
        if head in layer:
            return i
    raise AssertionError(f"{module}: not in any layer of LAYERS (add its package there)")


def _upward() -> list[tuple[str, str]]:
    out = []
    for a, targets in _graph(load_time=False).items():
        for b in targets:
            if a and b and _rank(b) > _rank(a) and (a, b) not in ALLOWED_UP:
                out.append((a, b))
    return sorted(out)


def test_no_module_imports_a_layer_above_its_own():
    assert _upward() == []
