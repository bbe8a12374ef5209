"""Typed backend configs (one class per kind, a tagged union): data only.

`BackendConfig` is the union every role field uses. `kind` picks the class; configs written
before `kind` existed still load: `base_url` set -> http, otherwise transformers.
`BACKEND_KINDS` derives from the union. What builds a backend from its config (and the pool
that shares one per endpoint) is `llm/pool.py`: importing this module loads no client.

Add a backend: subclass `_Backend` with `kind: Literal["name"] = "name"`, mark fields that
only change speed or place with OPERATIONAL, add it to the union `_AnyBackend`, and register
its builder in `llm/pool.py` (`BUILDERS`; see docs/engineering_notes.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter, field_validator

from ..markers import OPERATIONAL
from .types import SamplingParams
from .urls import check_base_url
from .urls import resolve_model as resolve_model  # where callers import it from


class _Backend(BaseModel):
    """What every role config has: which model, how to sample, an optional system prompt.
    Holds the *name* of an API-key variable at most, never the key."""

    model_config = ConfigDict(extra="forbid")

    kind: str
    model: str = Field(description="model name (HTTP), local path or hub id (transformers)")
    params: SamplingParams = Field(SamplingParams(), description="sampling for this role")
    system_prompt: str | None = Field(None, description="system message added to this role's requests")

    def params_or(self, default: SamplingParams) -> SamplingParams:
        """The configured sampling, or a stage's own default when none was configured."""
        return self.params if self.params != SamplingParams() else default

    def public(self) -> dict[str, Any]:
        """What may go into a manifest: everything (the key itself is never in the config)."""
        return self.model_dump(mode="json")

    def endpoint_key(self) -> str:
        """Equal for two roles that one backend can serve (sampling and system prompts are
        per request): one connection pool, or one copy of in-process weights."""
        import orjson

        data = self.model_dump(mode="json", exclude={"params", "system_prompt"})
        return orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()


class HTTPBackendConfig(_Backend):
    """An OpenAI-compatible server: vLLM, SGLang, TGI, Ollama, llama.cpp, OpenAI."""

    kind: Literal["http"] = "http"
    base_url: Annotated[str | list[str], OPERATIONAL] = Field(
        description="server URL, e.g. http://localhost:8000/v1, or a list of URLs: a fleet, each request to the "
        "least busy endpoint (llm/fleet.py)"
    )
    api_key_env: Annotated[str | None, OPERATIONAL] = Field(
        None, description="environment variable that holds the API key (the key is never stored)"
    )
    max_concurrency: Annotated[int, OPERATIONAL] = Field(64, ge=1, description="requests in flight at most")
    timeout_s: Annotated[float, OPERATIONAL] = Field(120.0, gt=0, description="per request")
    max_retries: Annotated[int, OPERATIONAL] = Field(5, ge=0)
    backoff_base_s: Annotated[float, OPERATIONAL] = Field(0.5, ge=0)
    backoff_max_s: Annotated[float, OPERATIONAL] = Field(30.0, ge=0)
    connect_retry_s: Annotated[float, OPERATIONAL] = Field(
        8.0, ge=0, description="how long a server that never answered is retried"
    )
    structured_output: bool | Literal["json_schema", "json_object", "prompt"] = Field(
        True,
        description="structured output: true negotiates per endpoint (response_format json_schema, then "
        "json_object with the schema, then the schema in the prompt: the first the server takes); a dialect "
        "name starts there; false puts the schema in the prompt only",
    )

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, v: str | list[str]) -> str | list[str]:
        if isinstance(v, list):
            if not v:
                raise ValueError("an empty list: give one URL or a list of URLs (a fleet)")
            for u in v:
                check_base_url(u)
            return v
        s = v.strip()
        if s.startswith("[") or s.count("://") > 1:
            raise ValueError(
                f"{v!r} is one string that looks like a list: a fleet is a list, "
                "in YAML `base_url: [URL, URL]` or on the command line --set ROLE.base_url='[URL, URL]'"
            )
        return check_base_url(v)


class TransformersBackendConfig(_Backend):
    """A model loaded in this process with transformers (batched; constrained JSON by xgrammar)."""

    kind: Literal["transformers"] = "transformers"
    batch_size: Annotated[int, OPERATIONAL] = Field(
        32, ge=1, description="rows per generate call (measured default: llm/local.py DEFAULT_BATCH_SIZE)"
    )
    device: Annotated[str | None, OPERATIONAL] = Field(None, description="cuda, cpu, mps (default: cuda if available)")
    threads: Annotated[int | None, OPERATIONAL] = Field(
        None, ge=1, description="torch threads on CPU (default 1: one beat two by 4-6x on a busy 2-core machine)"
    )


class ScriptedBackendConfig(_Backend):
    """Replies from a script (dialforge.testing.ScriptedChatModel): dry runs and tests."""

    kind: Literal["scripted"] = "scripted"
    model: str = "scripted"
    replies: list[str] | None = Field(
        None, description="used in order; then a minimal valid object for structured requests"
    )


def backend_kind(value: Any) -> str | None:
    """The tag of a backend config: `kind`, else http when `base_url` is set, else transformers."""
    if isinstance(value, dict):
        kind = value.get("kind")
        if kind is not None:
            return str(kind)
        return "http" if value.get("base_url") else "transformers"
    return getattr(value, "kind", None)


_AnyBackend = (
    Annotated[HTTPBackendConfig, Tag("http")]
    | Annotated[TransformersBackendConfig, Tag("transformers")]
    | Annotated[ScriptedBackendConfig, Tag("scripted")]
)

BACKEND_KINDS: dict[str, type[_Backend]] = {
    tag.tag: cls for cls, tag in (get_args(member) for member in get_args(_AnyBackend))
}
"""Each backend kind (the union's tag, its class's `kind`) and its config class."""

BackendConfig = Annotated[
    _AnyBackend,
    Discriminator(
        backend_kind,
        custom_error_type="backend_kind",
        custom_error_message=f"unknown backend kind (known: {', '.join(BACKEND_KINDS)})",
    ),
]
"""Any backend config; the type of every role field (`user: BackendConfig`)."""

_ADAPTER: TypeAdapter[BackendConfig] = TypeAdapter(BackendConfig)


def backend_config(value: Mapping[str, Any] | _Backend | None = None, **fields: Any) -> BackendConfig:
    """A typed backend config from a mapping or keywords, with the same rules as YAML:
    `backend_config(model="m", base_url=URL)` is HTTP, `backend_config(model=PATH)` in-process."""
    if isinstance(value, _Backend):
        return value.model_copy(update=fields) if fields else value  # type: ignore[return-value]
    return _ADAPTER.validate_python({**(value or {}), **fields})


def same_endpoint(a: BackendConfig, b: BackendConfig) -> bool:
    """Whether two role configs reach the same model the same way (one backend serves both)."""
    return a.endpoint_key() == b.endpoint_key()
