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


# UTF-32 first: its little-endian mark starts with UTF-16's
_BOMS: tuple[tuple[str, bytes], ...] = (
    ("utf-8-sig", b"\xef\xbb\xbf"),
    ("utf-32", b"\xff\xfe\x00\x00"),
    ("utf-32", b"\x00\x00\xfe\xff"),
    ("utf-16", b"\xff\xfe"),
    ("utf-16", b"\xfe\xff"),
)


def decode_text(raw: bytes, p: Path, what: str) -> str:
    """UTF-8, or UTF-8/16/32 with a byte-order mark; anything else is named by byte offset."""
    for encoding, bom in _BOMS:
        if raw.startswith(bom):
            try:
                return raw.decode(encoding)
            except UnicodeDecodeError as e:
                raise ConfigError(f"{p}: {what} is not valid {encoding} text (byte offset {e.start})") from None
    head = raw[:64]
    if len(head) >= 2 and b"\x00" in head:  # UTF-16 without a BOM: every other byte of ASCII text is 0
        for encoding, zeros, chars in (("utf-16-le", head[1::2], head[0::2]), ("utf-16-be", head[0::2], head[1::2])):
            if not zeros.strip(b"\x00") and b"\x00" not in chars:
                try:
                    return raw.decode(encoding)
                except UnicodeDecodeError:
                    break
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"{p}: {what} is not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start}); save it as UTF-8"
        ) from None
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise ConfigError(f"{p}:{line}: {what} is binary, not YAML text (a NUL character on that line)")
    return text


def _yaml_error(e: yaml.YAMLError, p: Path, what: str) -> ConfigError:
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    where = f"{p}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(p)
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    context = getattr(e, "context", None)
    cmark = getattr(e, "context_mark", None)
    if context and cmark is not None and mark is not None and cmark.line != mark.line:
        context += f" at line {cmark.line + 1}"
    detail = f"{problem} ({context})" if context and problem != context else problem
    return ConfigError(f"{where}: invalid YAML in {what}: {' '.join(str(detail).split())}")


def read_yaml(path: str | Path, what: str = "config file") -> Any:
    """Parsed YAML, or a ConfigError naming the file (and line:column for a syntax error)."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: {what} not found")
    if p.is_dir():
        raise ConfigError(f"{p}: {what} is a directory, expected a YAML file")
    text = decode_text(p.read_bytes(), p, what)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise _yaml_error(e, p, what) from None


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
