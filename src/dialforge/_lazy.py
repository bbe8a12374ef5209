"""Lazy package exports: a package's public names load on first use, not with the package.

Importing a leaf module (a config, say) runs every package `__init__` above it; if those
imported their whole package, `import dialforge.simulate.config` would load the engine, the
cache, the client and every format. So each `__init__.py` only calls `attach(__name__,
__file__)`, and the names it exports are written once, as ordinary imports, in the
`__init__.pyi` beside it: type checkers read that stub, and `attach` reads the same stub
(with `ast`, nothing imported) to know which module holds each name.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any


def stub_names(init_file: str | Path) -> dict[str, tuple[str, str]]:
    """{exported name: (relative module, name in it)} from the `__init__.pyi` beside
    `init_file`: every `from .x import a as b` statement at the top level (`__version__`
    included, `__all__` ignored)."""
    stub = Path(init_file).with_suffix(".pyi")
    out: dict[str, tuple[str, str]] = {}
    for node in ast.parse(stub.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom) and node.level:
            module = "." * node.level + (node.module or "")
            for alias in node.names:
                out[alias.asname or alias.name] = (module, alias.name)
    return out


class _LazyPackage(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and name in vars(self).get("_exports", ()):
            return
        super().__setattr__(name, value)


def attach(package: str, init_file: str) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """`__getattr__, __dir__, __all__ = attach(__name__, __file__)` in a package's
    `__init__.py`: its exports from `__init__.pyi`, each imported on first access."""
    names = stub_names(init_file)
    module_object = sys.modules[package]
    # an exported function named like a submodule (`score.dedup`, `workflows.selftalk`, the
    # root's `simulate`) stays the function when that submodule is imported later
    vars(module_object)["_exports"] = frozenset(n for n, (m, _) in names.items() if m.strip("."))
    module_object.__class__ = _LazyPackage

    def __getattr__(name: str) -> Any:
        if name not in names:
            # a submodule not imported yet (`dialforge.report` after `import dialforge`)
            if not name.startswith("_") and importlib.util.find_spec(f"{package}.{name}") is not None:
                return importlib.import_module(f"{package}.{name}")
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attr = names[name]
        if not module.strip("."):  # `from . import submodule`
            return importlib.import_module(module + attr, package)
        value = getattr(importlib.import_module(module, package), attr)
        vars(module_object)[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(names)

    return __getattr__, __dir__, sorted(names)
