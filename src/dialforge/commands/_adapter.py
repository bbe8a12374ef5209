"""One adapter from a `Command` to the typer command users run.

Every config-backed command gets the same options the same way: `--config`, the command's own
flags (type, default and help read from the config field they set), the backend flags,
`--set` (checked against the config's field paths, with a "did you mean"), `--api-key-env`,
`--executor/--ray-address`, `--force-new`, `--no-cache`, `--strict`. Config classes are
imported only when their command is built (`dialforge --help` imports none).
"""

from __future__ import annotations

import inspect
import types
import typing
from pathlib import Path
from typing import Any, Literal, Optional, Union, get_args, get_origin

import typer

from ..errors import DialforgeError
from ._load import field_info, field_paths, load_checked, load_config, resolve
from ._spec import _UNSET, Arg, Backends, Call, Command, Opt, Result

SET_HELP = "override any config field, repeatable: a dotted FIELD for nested ones{example}; values are YAML"
_SET_EXAMPLES = (
    "simulate.max_turns=6",
    "bootstrap=0",
    "max_turns=6",
    "epochs=1",
    "limit=10",
    "threshold=0.6",
    "mode=pairwise",
    "embedder=null",
)
MODEL_HELP = "model for every role: name (with --base-url) or local path / hub id"
URL_HELP = (
    "OpenAI-compatible server for every role: its URL, e.g. http://localhost:8000/v1, or a list of URLs (a fleet)"
)
KEY_HELP = "environment variable that holds the API key (the key is never stored)"
EXECUTOR_HELP = "local (default) or ray: run the jobs in blocks on a Ray cluster"
RAY_HELP = "with --executor ray: auto, HOST:PORT, or unset to start Ray"
FORCE_NEW_HELP = "the config changed: move the old run aside and start anew (else a re-run resumes)"
NO_CACHE_HELP = "bypass the call cache (every request goes to the model)"
STRICT_HELP = "exit 3 when the run ends with health warnings"


# -- overrides from flags ---------------------------------------------------------------------


def executor_overrides(kind: str | None, address: str | None) -> dict[str, Any]:
    """`--executor`/`--ray-address` as config overrides (the flags win over the YAML)."""
    if kind not in (None, "local", "ray"):
        raise DialforgeError(f"--executor must be local or ray, not {kind!r}")
    if kind is None and address is None:
        return {}
    return {"executor": {"kind": kind or "ray", "address": address}}


def use_executor(kind: str | None, address: str | None) -> Any:
    """The same flags for commands whose config has no `executor`: every stage they run."""
    from ..run.kernel import use_executor as _use

    return _use(executor_overrides(kind, address).get("executor"))


def backend_overrides(prefix: str, model: str | None, base_url: str | None, api_key_env: str | None) -> dict[str, Any]:
    """CLI flags for one role's backend, as dotted config overrides (`--base-url URL --model
    NAME` is an HTTP server, `--model PATH_OR_ID` alone the in-process backend, unless the
    config names a server for the role: then it is the name that server serves. An embedded
    model (`smollm2-135m`, `dialforge-tiny`) is never served, so its name alone always runs
    in-process)."""
    from ..embedded import is_embedded

    if is_embedded(model) and base_url is None:  # replaces the role: its server fields go, its sampling stays
        from ..config import RoleSwap

        return {prefix: RoleSwap(kind="transformers", model=model)}
    out: dict[str, Any] = {f"{prefix}.model": model, f"{prefix}.api_key_env": api_key_env}
    if base_url is not None:
        out[f"{prefix}.base_url"] = base_url
        out[f"{prefix}.kind"] = "http"
    return {k: v for k, v in out.items() if v is not None}


def backend_group(
    roles: tuple[str, ...], model: str | None, base_url: str | None, api_key_env: str | None, **per_role: Any
) -> dict[str, Any]:
    """The shared backend flags (`--model M --base-url URL` for every role, as in `run`), then
    each role's own flags (`user=(model, base_url)`) on top."""
    out: dict[str, Any] = {}
    for role in roles:
        out.update(backend_overrides(role, model, base_url, api_key_env))
        own_model, own_url = per_role.get(role, (None, None))
        out.update(backend_overrides(role, own_model, own_url, api_key_env))
    return out


def _pyname(flag: str) -> str:
    return flag.split("/")[0].lstrip("-").replace("-", "_")


def _backend_values(b: Backends, kw: dict[str, Any]) -> dict[str, Any]:
    model, url, key = kw.pop("model", None), kw.pop("base_url", None), kw.pop("api_key_env", None)
    own = {role: (kw.pop(_pyname(m), None), kw.pop(_pyname(u), None)) for role, m, u in b.own}
    out = backend_group(b.shared, model, url, key, **{r: v for r, v in own.items() if r in b.shared})
    for role, (m, u) in own.items():  # a role only its own flags set: untouched unless given
        if role not in b.shared and (m is not None or u is not None):
            out.update(backend_overrides(role, m, u, key))
    return out


def _opt_value(o: Opt, v: Any) -> Any:
    if v is None or v is False and "/" not in o.flag or isinstance(v, list) and not v:
        return None
    if o.value is not _UNSET:
        return o.value
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, list):
        return [str(x) if isinstance(x, Path) else x for x in v]
    return v


# -- config fields: types, help, dotted paths ---------------------------------------------------


def _cli_type(annotation: Any) -> Any:
    """The command-line type of a config field: its scalar type, a list of it, or text."""
    if get_origin(annotation) is typing.Annotated:
        return _cli_type(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return _cli_type(args[0]) if len(args) == 1 else str
    if get_origin(annotation) in (list, tuple, set):
        return list[_cli_type(get_args(annotation)[0])]  # type: ignore[misc]
    if get_origin(annotation) is Literal:
        return str
    return annotation if annotation in (bool, int, float, str, Path) else str


def _shown_default(info: Any) -> str:
    from pydantic_core import PydanticUndefined

    d = info.default
    if d is PydanticUndefined or d is None or not isinstance(d, (bool, int, float, str)) or d == "":
        return ""
    if isinstance(d, bool):
        return f"  [default: {'yes' if d else 'no'}]"
    return f"  [default: {d}]"


def _choices(annotation: Any) -> str:
    for a in (annotation, *get_args(annotation)):
        if get_origin(a) is Literal:
            return " (" + " | ".join(str(x) for x in get_args(a)) + ")"
    return ""


_METAVARS = {int: "N", float: "X", Path: "PATH", str: "TEXT"}


def metavar(kind: Any) -> str | None:
    if get_origin(kind) is list:
        kind = get_args(kind)[0]
    return _METAVARS.get(kind)


# -- building the typer function ----------------------------------------------------------------


def _option(name: str, kind: Any, default: Any, decl: str, help: str, **kw: Any) -> tuple[str, Any, Any]:
    mv = None if kind is bool else metavar(kind)
    return name, Optional[kind], typer.Option(default, *decl.split(" "), help=help, metavar=mv, **kw)  # noqa: UP045


def _opt_param(cls: type[Any], i: int, o: Opt) -> tuple[str, Any, Any]:
    info = field_info(cls, o.path)
    if info is None:
        raise RuntimeError(f"{cls.__name__} has no field {o.path!r} (flag {o.flag})")
    kind = o.kind or _cli_type(info.annotation)
    text = (o.help or info.description or "") + _choices(info.annotation)
    if o.value is _UNSET:
        text += _shown_default(info)
    if kind is bool and "/" not in o.flag:
        return f"opt{i}", bool, typer.Option(False, o.flag, help=text)
    required = ... if o.required else None
    return _option(f"opt{i}", kind, required, o.flag, text)


def _arg_param(a: Arg) -> tuple[str, Any, Any]:
    mv = a.metavar or (a.name.upper() if a.flag is None else metavar(a.kind))
    default = ... if a.required else a.default
    if a.flag is None:
        return a.name, a.kind, typer.Argument(default, help=a.help, metavar=mv, show_default=False)
    if a.kind is bool:
        mv = None
    ann = a.kind if a.required or a.default is not None else Optional[a.kind]  # noqa: UP045
    return a.name, ann, typer.Option(default, a.flag, help=a.help, metavar=mv)


def _config_param(cmd: Command, cls: type[Any]) -> list[tuple[str, Any, Any]]:
    text = cmd.config_help or f"YAML {cls.__name__} (see examples/)"
    if cmd.config_arg == "argument":
        return [("config", Path, typer.Argument(..., help=text, metavar="CONFIG", show_default=False))]
    if cmd.config_arg == "none":
        return []
    default = ... if cmd.config_arg == "required" else None
    return [("config", Optional[Path], typer.Option(default, "--config", help=text, metavar="PATH"))]  # noqa: UP045


def _backend_params(b: Backends) -> list[tuple[str, Any, Any]]:
    out = []

    def req(flag: str) -> Any:
        return ... if flag in b.required else None

    if b.shared:
        out.append(_option("model", str, req("--model"), "--model", b.model_help or MODEL_HELP))
        out.append(_option("base_url", str, None, "--base-url", URL_HELP))
    for role, m, u in b.own:
        out.append(_option(_pyname(m), str, req(m), m, f"{role} model (overrides --model)"))
        out.append(_option(_pyname(u), str, None, u, f"{role} server URL (overrides --base-url)"))
    out.append(_option("api_key_env", str, None, "--api-key-env", KEY_HELP))
    return out


def _params(cmd: Command, cls: type[Any]) -> list[tuple[str, Any, Any]]:
    ps = _config_param(cmd, cls) + [_arg_param(a) for a in cmd.args]
    ps += [_opt_param(cls, i, o) for i, o in enumerate(cmd.opts)]
    if cmd.backends is not None:
        ps += _backend_params(cmd.backends)
    paths = set(field_paths(cls))
    example = next((f" (--set {e})" for e in _SET_EXAMPLES if e.split("=")[0] in paths), "")
    set_help = SET_HELP.format(example=example)
    ps.append(("set_", Optional[list[str]], typer.Option(None, "--set", help=set_help, metavar="FIELD=VALUE")))  # noqa: UP045
    if cmd.executor:
        ps.append(_option("executor", str, None, "--executor", EXECUTOR_HELP))
        ps.append(_option("ray_address", str, None, "--ray-address", RAY_HELP))
    flags = [
        ("force_new", "--force-new", FORCE_NEW_HELP, cmd.resumable and cmd.force_new is not False),
        ("no_cache", "--no-cache", NO_CACHE_HELP, cmd.cache),
        ("strict", "--strict", STRICT_HELP, cmd.strict),
    ]
    ps += [(n, bool, typer.Option(False, f, help=h)) for n, f, h, on in flags if on]
    return ps


def _invoke(cmd: Command, kw: dict[str, Any]) -> Any:
    ov: dict[str, Any] = {}
    if cmd.backends is not None:
        ov.update(_backend_values(cmd.backends, kw))
    for i, o in enumerate(cmd.opts):
        v = _opt_value(o, kw.pop(f"opt{i}"))
        if v is not None:
            ov[o.path] = v
    executor = (kw.pop("executor", None), kw.pop("ray_address", None))
    if cmd.executor == "config":
        ov.update(executor_overrides(*executor))
    call = Call(
        cmd,
        kw.pop("config", None),
        ov,
        kw.pop("set_", None) or [],
        {},
        force_new=kw.pop("force_new", False),
        use_cache=not kw.pop("no_cache", False),
        strict=kw.pop("strict", False),
        executor=executor,
    )
    call.values.update(kw)
    result = cmd.run(call)
    if isinstance(result, Result):
        from ._output import show

        show(result, call.strict)


def build(cmd: Command) -> Any:
    """The typer function of a command: its own for a plain one, else generated from its config."""
    if cmd.config is None:
        return cmd.run
    params = _params(cmd, resolve(cmd.config))

    def command(**kw: Any) -> Any:
        return _invoke(cmd, kw)

    kind = inspect.Parameter.KEYWORD_ONLY
    command.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(n, kind, default=d, annotation=a) for n, a, d in params]
    )
    command.__annotations__ = {n: a for n, a, _ in params}
    command.__doc__ = cmd.summary
    return command


__all__ = [
    "Arg",
    "Backends",
    "Command",
    "Opt",
    "backend_group",
    "backend_overrides",
    "build",
    "load_checked",
    "load_config",
]
