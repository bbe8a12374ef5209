"""YAML configs validated by pydantic; errors name the file and the path of the bad field."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .errors import ConfigError

C = TypeVar("C", bound=BaseModel)


def _set_dotted(d: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    for p in parts[:-1]:
        d = d.setdefault(p, {})
    d[parts[-1]] = value


def format_validation_error(e: ValidationError, source: str) -> str:
    errs = []
    for x in e.errors()[:5]:
        loc = ".".join(str(p) for p in x["loc"]) or "<root>"
        msg = "unknown field" if x["type"] == "extra_forbidden" else x["msg"]
        errs.append(f"field '{loc}': {msg}")
    more = f" (and {len(e.errors()) - 5} more)" if len(e.errors()) > 5 else ""
    return f"{source}: " + "; ".join(errs) + more


def read_yaml(path: str | Path, what: str = "config file") -> Any:
    """Parsed YAML, or a ConfigError naming the file."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: {what} not found")
    try:
        return yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: invalid YAML: {e}") from None


def load_config(cls: type[C], path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> C:
    """Config from a YAML file (optional) with CLI overrides (dotted keys) applied on top."""
    data: dict[str, Any] = {}
    source = "command line"
    if path is not None:
        p = Path(path)
        source = str(p)
        loaded = read_yaml(p)
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{p}: expected a mapping at the top level")
        data = loaded
    for k, v in (overrides or {}).items():
        if v is not None:
            _set_dotted(data, k, v)
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, source)) from None
