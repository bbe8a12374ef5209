"""Typed backend configs (one class per kind, a tagged union) and the pool that builds them.

`BackendConfig` is the union every role field uses. `kind` picks the class; configs written
before `kind` existed still load: `base_url` set -> http, otherwise transformers.

Add a backend: subclass `_Backend` with `kind: Literal["name"] = "name"` and a `build()`
that returns a `ChatModel`, mark fields that only change speed or place with OPERATIONAL,
and add the class to `BACKEND_KINDS` (see docs/engineering_notes.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter, field_validator

from ..config import OPERATIONAL
from ..errors import ConfigError
from .types import ChatModel, SamplingParams


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

    def build(self) -> ChatModel:
        raise NotImplementedError


def resolve_model(name: str) -> str:
    """The local path or hub id to load for a model name: an embedded model's name
    (`smollm2-135m`, `dialforge-tiny`: embedded.py) is its cached folder (built on first use).
    Every in-process load goes through here."""
    from ..embedded import MODELS, embedded_path

    if name in MODELS:
        return str(embedded_path(name))
    if name.startswith(("/", "./", "../", "~")) and not Path(name).expanduser().exists():
        known = ", ".join(sorted(MODELS))
        raise ConfigError(f"model {name!r}: no such folder (a local model path, a hub id, or one of {known})")
    return name


def check_base_url(url: str) -> str:
    """A base URL a client can send to: http(s), a host, nothing else on the line. Raises
    ValueError saying what is wrong (a config error, before the first request)."""
    from urllib.parse import urlsplit

    if not isinstance(url, str) or not url.strip():
        raise ValueError("an empty URL: give the server's base URL, e.g. http://localhost:8000/v1")
    if url != url.strip() or any(c.isspace() for c in url):
        raise ValueError(f"{url!r} is not a URL (it contains spaces); e.g. http://localhost:8000/v1")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a bad port raises here)
    except ValueError as e:
        raise ValueError(f"{url!r} is not a URL ({e}); e.g. http://localhost:8000/v1") from None
    if parts.scheme not in ("http", "https"):
        what = f"scheme {parts.scheme!r}" if parts.scheme else "no scheme"
        raise ValueError(f"{url!r}: {what}; an OpenAI-compatible server URL is http(s)://HOST[:PORT]/PATH")
    if not parts.hostname:
        raise ValueError(f"{url!r}: no host; e.g. http://localhost:8000/v1")
    return url


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

    def build(self) -> ChatModel:
        from .http import OpenAIHTTPBackend

        urls = [self.base_url] if isinstance(self.base_url, str) else list(self.base_url)
        kw: dict[str, Any] = dict(
            api_key_env=self.api_key_env,
            max_concurrency=self.max_concurrency,
            timeout_s=self.timeout_s,
            max_retries=self.max_retries,
            backoff_base_s=self.backoff_base_s,
            backoff_max_s=self.backoff_max_s,
            connect_retry_s=self.connect_retry_s,
            structured_output=self.structured_output,
        )
        if len(urls) > 1:
            from .fleet import EndpointFleet

            return EndpointFleet(self.model, urls, **kw)
        return OpenAIHTTPBackend(self.model, urls[0], **kw)


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

    def build(self) -> ChatModel:
        from ..embedded import canonical
        from .local import TransformersBackend

        return TransformersBackend(
            resolve_model(self.model),
            batch_size=self.batch_size,
            device=self.device,
            name=canonical(self.model),
            threads=self.threads,
        )


class ScriptedBackendConfig(_Backend):
    """Replies from a script (dialforge.testing.ScriptedChatModel): dry runs and tests."""

    kind: Literal["scripted"] = "scripted"
    model: str = "scripted"
    replies: list[str] | None = Field(
        None, description="used in order; then a minimal valid object for structured requests"
    )

    def build(self) -> ChatModel:
        from ..testing import ScriptedChatModel

        return ScriptedChatModel(self.replies, self.model)


BACKEND_KINDS: dict[str, type[_Backend]] = {
    "http": HTTPBackendConfig,
    "transformers": TransformersBackendConfig,
    "scripted": ScriptedBackendConfig,
}


def backend_kind(value: Any) -> str | None:
    """The tag of a backend config: `kind`, else http when `base_url` is set, else transformers."""
    if isinstance(value, dict):
        kind = value.get("kind")
        if kind is not None:
            return str(kind)
        return "http" if value.get("base_url") else "transformers"
    return getattr(value, "kind", None)


BackendConfig = Annotated[
    Annotated[HTTPBackendConfig, Tag("http")]
    | Annotated[TransformersBackendConfig, Tag("transformers")]
    | Annotated[ScriptedBackendConfig, Tag("scripted")],
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


def make_backend(cfg: BackendConfig) -> ChatModel:
    """A fresh backend (prefer `BackendPool.get`: one per endpoint, closed for you)."""
    return cfg.build()


def same_endpoint(a: BackendConfig, b: BackendConfig) -> bool:
    """Whether two role configs reach the same model the same way (one backend serves both)."""
    return a.endpoint_key() == b.endpoint_key()


class BackendPool:
    """One backend per endpoint for every role and stage that shares it (an in-process model
    loads once), closed together. Use `async with BackendPool() as pool:` in one event loop.

    `injected` maps a config's `model` name to a ready backend (tests hand in a
    ScriptedChatModel); the pool returns it for every role with that model and leaves
    closing it to whoever made it.
    """

    def __init__(self, injected: Mapping[str, ChatModel] | None = None) -> None:
        self.injected: dict[str, ChatModel] = dict(injected or {})
        self._built: dict[str, ChatModel] = {}

    def get(self, cfg: BackendConfig) -> ChatModel:
        if cfg.model in self.injected:
            return self.injected[cfg.model]
        key = cfg.endpoint_key()
        backend = self._built.get(key)
        if backend is None:
            backend = self._built[key] = cfg.build()
        return backend

    def __len__(self) -> int:
        return len(self._built)

    async def aclose(self) -> None:
        built, self._built = self._built, {}
        for backend in built.values():
            await backend.aclose()

    async def __aenter__(self) -> BackendPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def _noop() -> None:
    return None


def borrow_pool(pool: BackendPool | None) -> tuple[BackendPool, Callable[[], Awaitable[None]]]:
    """The caller's pool (the caller closes it) or a new one; returns the pool and what to
    await when the stage ends (closes only a pool made here)."""
    if pool is not None:
        return pool, _noop
    own = BackendPool()
    return own, own.aclose
