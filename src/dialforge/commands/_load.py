"""Loading a command's config: YAML, then flags, then `--set` (a mistyped path gets a "did you
mean"), every input file checked before the first model call."""

from __future__ import annotations

import difflib
import importlib
import typing
from pathlib import Path
from typing import Any, get_args, get_origin


def resolve(ref: str) -> Any:
    """`module:Name` -> the object (config classes load only when their command runs)."""
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


def models_in(annotation: Any) -> list[type[Any]]:
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if get_origin(annotation) in (list, dict, tuple, set):
        return []  # an index or a key comes next, not a field
    return [m for a in get_args(annotation) for m in models_in(a)]


def field_info(cls: type[Any], path: str) -> Any:
    """The pydantic FieldInfo at a dotted path, or None."""
    models, info = [cls], None
    for part in path.split("."):
        info = next((m.model_fields[part] for m in models if part in m.model_fields), None)
        if info is None:
            return None
        models = models_in(info.annotation)
    return info


def field_paths(cls: type[Any], prefix: str = "", depth: int = 0) -> list[str]:
    """Every dotted field path of a config (nested models included, not list items or dict keys)."""
    out: list[str] = []
    for name, info in cls.model_fields.items():
        out.append(prefix + name)
        if depth < 6:
            for m in dict.fromkeys(models_in(info.annotation)):
                out += field_paths(m, f"{prefix}{name}.", depth + 1)
    return list(dict.fromkeys(out))


def _items(annotation: Any) -> list[type[Any]]:
    """The models of a list field's items (`simulate.simulators.0.` goes on in one of them)."""
    for a in (annotation, *get_args(annotation)):
        if get_origin(a) is list:
            return models_in(get_args(a)[0])
    return []


def _nearest(cls: type[Any], key: str) -> str | None:
    """The real path nearest a `--set` path that is no field (None: it is one, or none is near)."""
    parts = key.split(".")
    models: list[type[Any]] = [cls]
    items: list[type[Any]] = []
    for i, part in enumerate(parts):
        if part.isdigit() and items:  # a list index: its item's fields come next
            models, items = items, []
            continue
        if not models:
            return None  # inside a dict or a free-form value: the config checks it
        info = next((m.model_fields[part] for m in models if part in m.model_fields), None)
        if info is None:
            names = [n for m in models for n in m.model_fields]
            near = difflib.get_close_matches(part, names, n=1, cutoff=0.6)
            if near:
                return ".".join([*parts[:i], near[0]])
            whole = difflib.get_close_matches(key, field_paths(cls), n=1, cutoff=0.6)
            return whole[0] if whole else None
        models, items = models_in(info.annotation), _items(info.annotation)
    return None


def _unknown_paths(cls: type[Any], keys: typing.Iterable[str]) -> dict[str, str]:
    """`--set` paths that are no field of `cls`, each with the nearest real path."""
    return {key: near for key in keys if (near := _nearest(cls, key)) is not None}


def load_config(cls: type[Any], path: Path | None, overrides: dict[str, Any], given: dict[str, Any]) -> Any:
    """`config.load_config`, with a "did you mean" after each mistyped `--set` path."""
    from ..config import ConfigError
    from ..config import load_config as load

    try:
        return load(cls, path, overrides, given)
    except ConfigError as e:
        msg = str(e)
        for key, near in _unknown_paths(cls, given).items():
            msg = msg.replace(f"field '{key}': unknown field", f"field '{key}': unknown field (did you mean {near}?)")
        if msg == str(e):
            raise
        raise ConfigError(msg) from None


def load_checked(cls: Any, config: Path | None, overrides: dict[str, Any], sets: list[str] | None) -> Any:
    """A command's config: YAML, then flags, then `--set`; every input file checked now, so a
    typo fails before the first model call (file and field path, exit 2)."""
    from ..checks import check_inputs
    from ..config import config_origins, parse_set

    given = parse_set(sets)
    cfg = load_config(cls, config, overrides, given)
    if config is None:
        check_inputs(cfg, "command line")
    else:
        check_inputs(cfg, str(config), config_origins(overrides, given))
    from ..tiny import uses_tiny

    if uses_tiny(cfg):
        from ._output import tiny_note

        tiny_note()
    return cfg
