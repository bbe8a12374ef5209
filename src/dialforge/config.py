"""YAML configs validated by pydantic; errors name the file and the path of the bad field.

This is the config *loader*: configs themselves are data modules (`*/config.py`) that import
pydantic, the stdlib, `markers` and other configs only. The loader may import data configs
(`llm.config`: its backend kinds are union tags left out of error paths), never an engine module.

Fields carry markers (`markers.py`: OPERATIONAL, INPUT_FILE) instead of living in name lists;
the fingerprint and input resolution below read them.
"""

from __future__ import annotations

import hashlib
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar, get_args

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from .errors import ConfigError
from .io.yaml_files import read_yaml, yaml_load
from .llm.config import BACKEND_KINDS  # data only: a backend union's tag is never a field name
from .markers import FINGERPRINT_IF_SET, INPUT_FILE, OPERATIONAL, is_marked
from .markers import FieldMarker as FieldMarker

C = TypeVar("C", bound=BaseModel)
M = TypeVar("M", bound=BaseModel)


class RoleSwap(dict):  # type: ignore[type-arg]
    """An override that replaces a role's backend (its kind, model and server fields) but keeps
    the role's sampling and system prompt: `--model smollm2-135m` on a config whose role names a
    server runs it in-process with the config's `params`."""

    KEEP = ("params", "system_prompt")


def _set_dotted(d: dict[str, Any], key: str, value: Any) -> None:
    """`a.b.0.c = v`: a number indexes an existing list (`simulate.simulators.0.name`)."""
    node: Any = d
    parts = key.split(".")
    for i, p in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not p.isdigit() or int(p) >= len(node):
                raise ConfigError(f"{key}: {p!r} is not an index of the list at {'.'.join(parts[:i])}")
            if last:
                node[int(p)] = value
            elif not isinstance(node[int(p)], (dict, list)):
                node[int(p)] = {}
            node = node[int(p)]
        elif last:
            if isinstance(value, RoleSwap):
                old = node.get(p) if isinstance(node.get(p), dict) else {}
                value = {**{k: old[k] for k in RoleSwap.KEEP if k in old}, **value}
            node[p] = value
        else:
            if not isinstance(node.get(p), (dict, list)):
                node[p] = {}
            node = node[p]


def parse_set(items: list[str] | None) -> dict[str, Any]:
    """`--set a.b=c` flags as dotted overrides; values are YAML (`3`, `true`, `[x, y]`, `null`)."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set simulate.max_turns=6")
        try:
            out[key.strip()] = yaml_load(raw) if raw.strip() else ""
        except yaml.constructor.ConstructorError as e:
            raise ConfigError(f"--set {key.strip()}: {e.problem}") from None
        except RecursionError:
            raise ConfigError(f"--set {key.strip()}: the value is nested too deeply") from None
        except yaml.YAMLError:
            out[key.strip()] = raw  # not YAML: the text itself
    return out


def _field_path(loc: tuple[int | str, ...]) -> tuple[list[str], list[str]]:
    """(the field path of an error location without backend union tags, the backend kinds dropped)."""
    keep: list[str] = []
    kinds: list[str] = []
    for p in loc:
        (kinds if p in BACKEND_KINDS else keep).append(str(p))
    return keep, kinds


def _error_line(x: Any) -> tuple[str, str]:
    """(the field path, the message) of one pydantic error."""
    parts, kinds = _field_path(x["loc"])
    msg = "unknown field" if x["type"] == "extra_forbidden" else x["msg"].removeprefix("Value error, ")
    if kinds and x["type"] == "extra_forbidden":
        msg += f" for a {kinds[-1]} backend" + (" (HTTP options need base_url)" if kinds[-1] != "http" else "")
    return ".".join(parts) or "<root>", msg


def _by_source(errs: list[tuple[str, str]]) -> str:
    """`where: m1; m2; other: m3`: each source once per run of errors from it."""
    out = []
    for i, (where, m) in enumerate(errs):
        out.append(m if i and errs[i - 1][0] == where else f"{where}: {m}")
    return "; ".join(out)


def format_validation_error(e: ValidationError, source: str, origins: dict[str, str] | None = None) -> str:
    """One line for a config's validation errors (at most five), each naming its field path.
    `origins` maps dotted keys given outside the file (`--set a.b=c`, CLI flags) to where they
    came from, so an error in such a value names that, not the file."""
    errs: list[tuple[str, str]] = []
    seen: list[tuple[str, str]] = []
    for x in e.errors()[:5]:
        loc, msg = _error_line(x)
        if any(loc.endswith("." + r) and msg == m for r, m in seen):
            continue  # a value copied into another field (pipeline `model` -> `induce.model`)
        seen.append((loc, msg))
        errs.append((_origin(loc, origins or {}) or source, f"field '{loc}': {msg}"))
    more = f" (and {len(e.errors()) - 5} more)" if len(e.errors()) > 5 else ""
    return _by_source(errs) + more


def config_origins(overrides: dict[str, Any] | None, sets: dict[str, Any] | None) -> dict[str, str]:
    """Dotted keys given outside a config file, and where: CLI flags (`command line`; a flag
    not given is None) and `--set KEY` (applied last, so it wins)."""
    out = {k: "command line" for k, v in (overrides or {}).items() if v is not None}
    out.update({k: f"--set {k}" for k in sets or {}})
    return out


def blame(field: str, source: str, origins: dict[str, str] | None) -> str:
    """Where a config error at `field` (`a.b[0].c` or `a.b.0.c`) points: the flag or `--set`
    that gave the value, else `source` (the config file)."""
    return _origin(re.sub(r"\[(\d+)\]", r".\1", field), origins or {}) or source


def _origin(loc: str, origins: dict[str, str]) -> str | None:
    """Where the value at dotted `loc` came from: the longest given key that is `loc` or above it."""
    hits = [k for k in origins if loc == k or loc.startswith(k + ".")]
    if hits:
        return origins[max(hits, key=len)]
    below = [k for k in origins if k.startswith(loc + ".")]  # `--set a.b=1` where `a` is unknown
    return origins[below[0]] if below and loc != "<root>" else None


# UTF-32 first: its little-endian mark starts with UTF-16's
def load_config(
    cls: type[C],
    path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    sets: dict[str, Any] | None = None,
) -> C:
    """Config from a YAML file (optional) with CLI overrides (dotted keys; None = flag not
    given) applied on top, then `--set` values (where null means null)."""
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
    for k, v in (sets or {}).items():
        _set_dotted(data, k, v)
    from .llm.redact import find_secrets

    find_secrets(data)  # a key in a URL or in api_key_env: masked in every message from here on
    origins = config_origins(overrides, sets)
    try:
        cfg = cls.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, source, origins if path is not None else None)) from None
    # a relative input path is read from the working directory, else from the config's folder
    return resolve_inputs(cfg, Path(path).parent, missing_only=True) if path is not None else cfg


# -- fingerprints -----------------------------------------------------------------------------


#: Keys of a JSON artifact (an object with `schema_version`, such as library.json) that say
#: when and from where it was made, not what it holds: its content hash leaves them out, so two
#: identical runs (in other folders, at other times) give the same ids and the same samples.
ARTIFACT_VOLATILE_KEYS = ("created_at", "sources")
#: A run directory's bookkeeping (locks, logs, manifests, usage, caches, temporary and
#: set-aside files): left out of a folder's content hash for the same reason.
_BOOKKEEPING = re.compile(
    r"^(\.lock|run\.log|manifest\.json|pipeline\.json|usage\.json|report\.html)$"
    r"|\.sqlite(-wal|-shm|-journal)?$|\.tmp$|\.corrupt(-\d{8}-\d{6})?$|^\."
)
_ARTIFACT_MAX_BYTES = 512 << 20


def _artifact_digest(path: str, size: int) -> str | None:
    """The hash of a JSON artifact without its volatile keys, or None if the file is not one."""
    if not path.endswith(".json") or size > _ARTIFACT_MAX_BYTES:
        return None
    import orjson

    with open(path, "rb") as f:
        head = f.read(1)
        if head != b"{":
            return None
        try:
            data = orjson.loads(head + f.read())
        except orjson.JSONDecodeError:
            return None
    if not isinstance(data, dict) or "schema_version" not in data:
        return None
    for key in ARTIFACT_VOLATILE_KEYS:
        data.pop(key, None)
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


@lru_cache(maxsize=4096)
def _file_hash(path: str, mtime_ns: int, size: int) -> str:
    artifact = _artifact_digest(path, size)
    if artifact is not None:
        return artifact
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def content_hash(path: str | Path) -> str | None:
    """sha256 of a file, or of a folder's relative names and file contents; None if absent.
    Times and paths are no content: a JSON artifact's `ARTIFACT_VOLATILE_KEYS` and a run
    directory's bookkeeping files are left out. Cached by (path, mtime, size): conversation
    ids fingerprint the config once per job."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return None
    if p.is_file():
        return _file_hash(str(p.resolve()), st.st_mtime_ns, st.st_size)
    h = hashlib.sha256()
    for root, dirs, files in os.walk(p):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))  # .git, .cache: no content
        for name in sorted(files):
            if _BOOKKEEPING.search(name):
                continue
            f = Path(root) / name
            fh = content_hash(f)
            h.update(f"{f.relative_to(p).as_posix()}\0{fh}\0".encode())
    return h.hexdigest()


def portable_path(path: str, folder: str | Path) -> str:
    """`path` relative to `folder` when both lie in one run directory (three levels up at
    most), else as given: an output that names its neighbours holds no absolute path of its
    own run, so two identical runs in two folders write the same bytes."""
    try:
        rel = os.path.relpath(Path(path).absolute(), Path(folder).absolute())
    except ValueError:
        return path
    return rel if rel.count("..") <= 3 else path


def _hash_input(value: Any) -> Any:
    if isinstance(value, str):
        digest = content_hash(value)
        return f"sha256:{digest[:32]}" if digest else value
    if isinstance(value, list):
        return [_hash_input(v) for v in value]
    if isinstance(value, dict):
        return {k: _hash_input(v) for k, v in value.items()}
    return value


def _fingerprint_model(model: BaseModel, dumped: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, info in type(model).model_fields.items():
        key = info.alias or name
        if key not in dumped or is_marked(info, OPERATIONAL):
            continue
        if dumped[key] is None and is_marked(info, FINGERPRINT_IF_SET):
            continue
        if is_marked(info, INPUT_FILE):
            out[key] = _hash_input(dumped[key])
        else:
            out[key] = _fingerprint_value(getattr(model, name), dumped[key])
    return out


def _fingerprint_value(value: Any, dumped: Any) -> Any:
    if isinstance(value, BaseModel) and isinstance(dumped, dict):
        return _fingerprint_model(value, dumped)
    if isinstance(value, (list, tuple)) and isinstance(dumped, list):
        return [_fingerprint_value(v, d) for v, d in zip(value, dumped, strict=True)]
    if isinstance(value, dict) and isinstance(dumped, dict):
        return {dk: _fingerprint_value(v, dumped[dk]) for (k, v), dk in zip(value.items(), dumped, strict=True)}
    return dumped


def fingerprint_data(config: BaseModel | dict[str, Any]) -> dict[str, Any]:
    """What determines a run's output: the config without OPERATIONAL fields, with every
    INPUT_FILE path replaced by its content hash (a missing file keeps its path)."""
    if not isinstance(config, BaseModel):
        return config
    return _fingerprint_model(config, config.model_dump(mode="json", by_alias=True))


# -- input paths -------------------------------------------------------------------------------


def _rebase(value: Any, base: Path, missing_only: bool) -> Any:
    if isinstance(value, str) and value and not Path(value).is_absolute():
        if missing_only and (Path(value).exists() or not (base / value).exists()):
            return value
        return str(base / value)
    if isinstance(value, list):
        return [_rebase(v, base, missing_only) for v in value]
    return value


def _map_value(value: Any, base: Path, missing_only: bool) -> Any:
    if isinstance(value, BaseModel):
        return resolve_inputs(value, base, missing_only=missing_only)
    if isinstance(value, list):
        return [_map_value(v, base, missing_only) for v in value]
    return value


def resolve_inputs(config: M, base: str | Path, *, missing_only: bool = False) -> M:
    """A copy with every relative INPUT_FILE path made relative to `base` (the demo resolves
    its config against the installed package, not the working directory). `missing_only`:
    only paths that do not exist from the working directory but do from `base` (how a config
    file's relative paths are read: from the working directory, else from the file's folder)."""
    update: dict[str, Any] = {}
    for name, info in type(config).model_fields.items():
        value = getattr(config, name)
        if is_marked(info, INPUT_FILE):
            new = _rebase(value, Path(base), missing_only)
        else:
            new = _map_value(value, Path(base), missing_only)
        if new != value:
            update[name] = new
    return config.model_copy(update=update) if update else config


def iter_inputs(config: BaseModel, prefix: str = "") -> list[tuple[str, str]]:
    """Every INPUT_FILE path in a config as (field path, path), for validation up front."""
    out: list[tuple[str, str]] = []
    for name, info in type(config).model_fields.items():
        value = getattr(config, name)
        where = f"{prefix}{name}"
        if is_marked(info, INPUT_FILE):
            vals = value if isinstance(value, list) else [value]
            out += [(f"{where}[{i}]" if isinstance(value, list) else where, v) for i, v in enumerate(vals) if v]
        elif isinstance(value, BaseModel):
            out += iter_inputs(value, where + ".")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                if isinstance(v, BaseModel):
                    out += iter_inputs(v, f"{where}[{i}].")
    return out


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def field_help(cls: type[BaseModel], path: str, default: str = "") -> str:
    """The description of a (dotted) config field, so CLI help and YAML docs say the same."""
    models: list[type[BaseModel]] = [cls]
    info: FieldInfo | None = None
    for part in path.split("."):
        info = next((m.model_fields[part] for m in models if part in m.model_fields), None)
        if info is None:
            return default
        models = _models_in(info.annotation)
    return (info.description if info is not None else None) or default
