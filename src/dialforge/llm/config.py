"""One backend config for CLI, YAML and Python: `base_url` set -> HTTP, else in-process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..errors import ConfigError
from .types import ChatModel, SamplingParams


class BackendConfig(BaseModel):
    """How to reach a model. Holds the *name* of the API-key variable, never the key."""

    model_config = ConfigDict(extra="forbid")

    model: str
    base_url: str | list[str] | None = Field(
        None, description="server URL, or a list of URLs: a fleet, each request to the least busy (llm/fleet.py)"
    )
    api_key_env: str | None = Field(
        None, description="environment variable that holds the API key (the key is never stored)"
    )
    max_concurrency: int = Field(64, ge=1)
    timeout_s: float = Field(120.0, gt=0)
    max_retries: int = Field(5, ge=0)
    backoff_base_s: float = Field(0.5, ge=0)
    backoff_max_s: float = Field(30.0, ge=0)
    connect_retry_s: float = Field(8.0, ge=0, description="how long a server that never answered is retried")
    structured_output: bool = Field(True, description="send response_format json_schema")
    batch_size: int = Field(16, ge=1, description="in-process backend: rows per generate call")
    device: str | None = None
    params: SamplingParams = SamplingParams()
    system_prompt: str | None = None

    def params_or(self, default: SamplingParams) -> SamplingParams:
        """The configured sampling, or a stage's own default when none was configured."""
        return self.params if self.params != SamplingParams() else default

    def public(self) -> dict[str, Any]:
        """What may go into a manifest: everything (the key itself is never in the config)."""
        return self.model_dump(mode="json")


def resolve_model(name: str) -> str:
    """The local path or hub id to load for a model name: `dialforge-tiny` is the offline demo
    model (built on first use, then cached). Every in-process load goes through here."""
    from ..tiny import TINY, tiny_model_path

    if name == TINY:
        return str(tiny_model_path())
    if name.startswith(("/", "./", "../", "~")) and not Path(name).expanduser().exists():
        raise ConfigError(f"model {name!r}: no such folder (a local model path, a hub id, or {TINY})")
    return name


def make_backend(cfg: BackendConfig) -> ChatModel:
    if cfg.base_url:
        from .http import OpenAIHTTPBackend

        urls = [cfg.base_url] if isinstance(cfg.base_url, str) else cfg.base_url
        kw: dict[str, Any] = dict(
            api_key_env=cfg.api_key_env,
            max_concurrency=cfg.max_concurrency,
            timeout_s=cfg.timeout_s,
            max_retries=cfg.max_retries,
            backoff_base_s=cfg.backoff_base_s,
            backoff_max_s=cfg.backoff_max_s,
            connect_retry_s=cfg.connect_retry_s,
            structured_output=cfg.structured_output,
        )
        if len(urls) > 1:
            from .fleet import EndpointFleet

            return EndpointFleet(cfg.model, urls, **kw)
        return OpenAIHTTPBackend(cfg.model, urls[0], **kw)
    from .local import TransformersBackend

    return TransformersBackend(resolve_model(cfg.model), batch_size=cfg.batch_size, device=cfg.device)


def same_endpoint(a: BackendConfig, b: BackendConfig) -> bool:
    """Whether two role configs reach the same model the same way, so one backend (one
    connection pool, or one copy of in-process weights) can serve both."""
    strip = {"params", "system_prompt"}
    return a.model_dump(exclude=strip) == b.model_dump(exclude=strip)
