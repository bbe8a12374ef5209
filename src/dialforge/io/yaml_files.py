"""YAML files read strictly, with errors that name file, line and column: a key given twice,
an integer too long to convert, nesting too deep, text that is not UTF-8 (or UTF-16/32 with a
byte-order mark), binary data. Configs, workflows, mappings and intent files read through it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError


class _StrictLoader(yaml.SafeLoader):
    """YAML that refuses what PyYAML would take silently or crash on: a key given twice in
    one mapping (the last one won), and an integer past Python's 4300-digit conversion limit
    (a ValueError traceback). Deep nesting is caught where the loader is called."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = key_node.value
            if key in first:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {first[key].line + 1})", key_node.start_mark
                )
            first[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        try:
            return super().construct_yaml_int(node)
        except ValueError:
            raise yaml.constructor.ConstructorError(
                None, None, f"an integer of {len(node.value)} characters is too long", node.start_mark
            ) from None


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _StrictLoader.construct_yaml_int)
_StrictLoader.add_constructor("tag:yaml.org,2002:map", _StrictLoader.construct_yaml_map)


def yaml_load(text: str) -> Any:
    """Parse YAML text strictly (see `_StrictLoader`); RecursionError for nesting too deep."""
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass


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
        return yaml_load(text)
    except yaml.YAMLError as e:
        raise _yaml_error(e, p, what) from None
    except RecursionError:
        raise ConfigError(f"{p}: invalid YAML in {what}: nested too deeply") from None
